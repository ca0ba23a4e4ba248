"""Matomo archiving per site and day (``ledger_archive``).

Only adds a table. Days without a row have never been archived by this project, so the next
``matomo_archive`` run archives every day that received hits.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Naive UTC; MariaDB/MySQL keep microseconds only with DATETIME(6) (as in 0001).
UTC_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "ledger_archive",
        sa.Column("site_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("deliveries_through", UTC_TS, nullable=False),
        sa.Column("archived_at", UTC_TS, nullable=False),
        sa.Column("runner", sa.String(32), nullable=False),
        sa.Column("message", sa.String(1000), nullable=True),
        sa.PrimaryKeyConstraint("site_id", "day", name="pk_ledger_archive"),
    )


def downgrade() -> None:
    op.drop_table("ledger_archive")
