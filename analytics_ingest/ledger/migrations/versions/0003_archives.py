"""Matomo archiving per site and day (``ledger_archive``), and the kind of each file.

Adds a table: days without a row have never been archived by this project, so the next
``matomo_archive`` run archives every day that received hits. Adds ``ledger_file.kind``: every
existing file is an access log (``log``); journals of replayed or harvested events (``journal``)
are delivered like logs but never count toward a day's completeness.

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
    # A plain ADD COLUMN (SQLite allows it with a constant default). Not batch mode: on SQLite it
    # recreates the table, and dropping the old one would cascade-delete every lane checkpoint.
    op.add_column("ledger_file", sa.Column("kind", sa.String(16), nullable=False, server_default="log"))
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
    op.drop_column("ledger_file", "kind")  # SQLite >= 3.35 drops a column in place
