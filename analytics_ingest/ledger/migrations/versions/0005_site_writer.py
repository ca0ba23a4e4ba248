"""One Matomo writer per site: ``ledger_site_writer``, the lock row per (destination, site).

See :mod:`analytics_ingest.site_writer` for why (Matomo's per-day fingerprint salt) and how.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "ledger_site_writer",
        sa.Column("destination", sa.String(255), primary_key=True),
        sa.Column("site_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("what", sa.String(255), nullable=True),
        sa.Column("since", UTC_TS, nullable=True),
        sa.Column("expires_at", UTC_TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("ledger_site_writer")
