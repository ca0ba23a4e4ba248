"""The days a log file's content covers, with its hits on each (``ledger_file_day``).

Only adds a table: existing rows are kept as they are. Files without day rows keep counting
toward their ``ledger_file.day``, so nothing needs back-filling.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_file_day",
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["ledger_file.id"], name="fk_ledger_file_day_file_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("file_id", "day", name="pk_ledger_file_day"),
    )
    op.create_index("ix_ledger_file_day_day", "ledger_file_day", ["day"])


def downgrade() -> None:
    op.drop_index("ix_ledger_file_day_day", table_name="ledger_file_day")
    op.drop_table("ledger_file_day")
