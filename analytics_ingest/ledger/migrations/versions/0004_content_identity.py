"""A file is its content, delivery state belongs to a destination, leases carry a fencing token.

* ``ledger_file.destination``, ``ledger_day.destination``, ``ledger_archive.destination``: what
  reached the outbox says nothing about what reached a Matomo, and one Matomo's state nothing
  about another's. Rows written before this revision get ``legacy``; the first destination that
  opens the ledger afterwards adopts them (``Ledger.__init__``), since that is the one they were
  written for in every set-up we know of (one ledger, one destination).
* ``ledger_file.content_head`` + ``variant`` replace the unique ``(site_id, path_hash)``: a file
  is found again by its content (renamed, rotated, recompressed), not by the path as typed.
  Legacy rows keep ``content_head = ''`` and are matched by path and fingerprint once, then
  filled in; ``variant = id`` keeps them distinct meanwhile.
* ``ledger_file.lease_generation``: the fencing token.
* ``ledger_file.raw_size``: the stored (compressed) size when last seen, so discovery can tell an
  unchanged compressed file without decompressing it; ``size`` is the content's size;
  ``ledger_file.raw_digest``: the sha256 of a compressed file seen whole, for the same reason.

On SQLite the file table is rebuilt (batch mode); :func:`analytics_ingest.ledger.migrate.upgrade`
turns foreign keys off for that, so the rebuild does not cascade-delete the lanes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LEGACY = "legacy"


def _destination() -> sa.Column:
    return sa.Column("destination", sa.String(255), nullable=False, server_default=LEGACY)


def upgrade() -> None:
    with op.batch_alter_table("ledger_file") as batch:
        batch.add_column(_destination())
        batch.add_column(sa.Column("content_head", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("variant", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_generation", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("raw_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("raw_digest", sa.String(64), nullable=True))
        batch.drop_constraint("uq_ledger_file_site_id_path_hash", type_="unique")
    op.execute("UPDATE ledger_file SET variant = id")
    with op.batch_alter_table("ledger_file") as batch:
        batch.create_unique_constraint(
            "uq_ledger_file_destination_site_id_content_head_variant",
            ["destination", "site_id", "content_head", "variant"],
        )
        batch.create_index("ix_ledger_file_destination_site_id_path_hash", ["destination", "site_id", "path_hash"])

    for table in ("ledger_day", "ledger_archive"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(_destination())
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["destination", "site_id", "day"])


def downgrade() -> None:
    for table in ("ledger_day", "ledger_archive"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["site_id", "day"])
            batch.drop_column("destination")
    with op.batch_alter_table("ledger_file") as batch:
        batch.drop_index("ix_ledger_file_destination_site_id_path_hash")
        batch.drop_constraint("uq_ledger_file_destination_site_id_content_head_variant", type_="unique")
        batch.create_unique_constraint("uq_ledger_file_site_id_path_hash", ["site_id", "path_hash"])
        for column in ("raw_digest", "raw_size", "lease_generation", "variant", "content_head", "destination"):
            batch.drop_column(column)
