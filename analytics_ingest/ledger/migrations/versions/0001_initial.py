"""The ledger's first schema: files, lanes, rejected lines, summaries, expected files, days.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Naive UTC; MariaDB/MySQL keep microseconds only with DATETIME(6).
UTC_TS = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "ledger_file",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("path_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("fingerprint_len", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("invalid_reason", sa.String(length=500), nullable=True),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_expires_at", UTC_TS, nullable=True),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.Column("updated_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_file"),
        sa.UniqueConstraint("site_id", "path_hash", name="uq_ledger_file_site_id_path_hash"),
    )
    op.create_index("ix_ledger_file_site_id_day", "ledger_file", ["site_id", "day"])
    op.create_index("ix_ledger_file_status", "ledger_file", ["status"])

    op.create_table(
        "ledger_lane",
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("lane", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("delivered_through", sa.BigInteger(), nullable=False),
        sa.Column("in_flight_through", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", UTC_TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["ledger_file.id"], name="fk_ledger_lane_file_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("file_id", "lane", name="pk_ledger_lane"),
    )

    op.create_table(
        "ledger_rejected_line",
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["ledger_file.id"], name="fk_ledger_rejected_line_file_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("file_id", "line_no", name="pk_ledger_rejected_line"),
    )

    op.create_table(
        "ledger_summary",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TS, nullable=True),
        sa.Column("finished_at", UTC_TS, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("lines_total", sa.BigInteger(), nullable=True),
        sa.Column("tracked", sa.BigInteger(), nullable=True),
        sa.Column("pages", sa.BigInteger(), nullable=True),
        sa.Column("downloads", sa.BigInteger(), nullable=True),
        sa.Column("bots", sa.BigInteger(), nullable=True),
        sa.Column("static", sa.BigInteger(), nullable=True),
        sa.Column("http_errors", sa.BigInteger(), nullable=True),
        sa.Column("http_redirects", sa.BigInteger(), nullable=True),
        sa.Column("filtered", sa.BigInteger(), nullable=True),
        sa.Column("invalid", sa.BigInteger(), nullable=True),
        sa.Column("delivered", sa.BigInteger(), nullable=True),
        sa.Column("rejected", sa.BigInteger(), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=True),
        sa.Column("format_name", sa.String(length=64), nullable=True),
        sa.Column("compression", sa.String(length=16), nullable=True),
        sa.Column("incomplete", sa.Boolean(), nullable=True),
        sa.Column("message", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"], ["ledger_file.id"], name="fk_ledger_summary_file_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_summary"),
    )
    op.create_index("ix_ledger_summary_file_id", "ledger_summary", ["file_id"])

    op.create_table(
        "ledger_expected_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("start_day", sa.Date(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_expected_files"),
        sa.UniqueConstraint("site_id", "start_day", name="uq_ledger_expected_files_site_id_start_day"),
    )

    op.create_table(
        "ledger_day",
        sa.Column("site_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expected", sa.Integer(), nullable=False),
        sa.Column("found", sa.Integer(), nullable=False),
        sa.Column("loaded", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "day", name="pk_ledger_day"),
    )
    op.create_index("ix_ledger_day_status", "ledger_day", ["status"])


def downgrade() -> None:
    op.drop_index("ix_ledger_day_status", table_name="ledger_day")
    op.drop_table("ledger_day")
    op.drop_table("ledger_expected_files")
    op.drop_index("ix_ledger_summary_file_id", table_name="ledger_summary")
    op.drop_table("ledger_summary")
    op.drop_table("ledger_rejected_line")
    op.drop_table("ledger_lane")
    op.drop_index("ix_ledger_file_status", table_name="ledger_file")
    op.drop_index("ix_ledger_file_site_id_day", table_name="ledger_file")
    op.drop_table("ledger_file")
