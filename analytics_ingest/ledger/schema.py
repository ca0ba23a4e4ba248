"""The ledger's tables (SQLAlchemy Core), portable across SQLite, PostgreSQL and MariaDB/MySQL.

Modelled on SciELO's control schema (``control_log_file``, ``control_log_file_summary``,
``control_date_status``) with statuses stored as the words of :mod:`analytics_ingest.vocabulary`,
plus what exactly-once delivery needs: a lease per file, a checkpoint per (file, lane) and the
lines Matomo rejected.

Portability choices:

* ``path`` is ``String(1024)``; its uniqueness per site goes through ``path_hash`` (SHA-256 hex),
  because MariaDB cannot index 1024 utf8mb4 characters (3072-byte key limit).
* times are naive UTC in the database (``DATETIME(6)`` on MariaDB, which otherwise drops
  sub-seconds); :class:`UTCDateTime` turns them into aware UTC datetimes in Python.
* surrogate keys are ``Integer`` (SQLite only auto-increments ``INTEGER PRIMARY KEY``); sizes, line
  numbers and counters are ``BigInteger``.

The hand-written Alembic migrations in ``migrations/versions`` must create exactly these tables; a
test compares them with Alembic's ``compare_metadata``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

PATH_MAX = 1024
STATUS_LEN = 16
OWNER_MAX = 255
DESTINATION_MAX = 255  # "outbox" or "matomo:<base URL>"; part of primary keys (MariaDB: 1020 bytes)
LEGACY_DESTINATION = "legacy"  # rows written before delivery state had a destination (see 0004)
MESSAGE_MAX = 1000
REASON_MAX = 500

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Naive UTC in the database, aware UTC in Python (naive values are taken as UTC)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            # imported here: the MySQL dialect package loads asyncio (~20 ms of every start-up)
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # defensive: SQLite text that bypassed the type
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.timezone.utc)


# --- one row per log file (SciELO control_log_file) --------------------------------------------
files = Table(
    "ledger_file",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Where the hits go: delivery state is per destination (the outbox, or one Matomo).
    Column("destination", String(DESTINATION_MAX), nullable=False, server_default=LEGACY_DESTINATION),
    Column("site_id", Integer, nullable=False),
    # A file is its content, not its path: ``path`` is where the content was last seen.
    Column("path", String(PATH_MAX), nullable=False),
    Column("path_hash", String(64), nullable=False),  # sha256(path) hex: find the last file seen at a path
    # sha256 of the content's first line (decompressed): the key that finds a known content again
    # under another name, compressed, rotated or grown. ``variant`` tells apart contents that share
    # a first line but differ later (a file re-written in place, imported again with --force).
    Column("content_head", String(64), nullable=False, server_default=""),
    Column("variant", Integer, nullable=False, server_default="0"),
    Column("size", BigInteger, nullable=False),  # bytes of (decompressed) content known so far
    Column("raw_size", BigInteger, nullable=True),  # bytes of the file as stored (compressed) when last seen
    # sha256 of the whole stored file when it is compressed: a byte-identical .gz is this content
    # without decompressing it to compare sizes (logs/content.py)
    Column("raw_digest", String(64), nullable=True),
    Column("fingerprint", String(128), nullable=False),  # sha256 of the first fingerprint_len content bytes
    Column("fingerprint_len", BigInteger, nullable=False),
    Column("day", Date, nullable=True),
    Column("status", String(STATUS_LEN), nullable=False),
    # log | journal (vocabulary.FILE_KINDS): only logs count toward a day being Loaded
    Column("kind", String(16), nullable=False, server_default="log"),
    Column("invalid_reason", String(REASON_MAX), nullable=True),
    Column("plan", Text, nullable=True),  # JSON: lanes, batch size, classification, format
    Column("lease_owner", String(OWNER_MAX), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    # Fencing token: +1 on every lease taken; checkpoint writes carry it, so an owner that lost
    # its lease (frozen past the TTL) can write nothing and stops.
    Column("lease_generation", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("destination", "site_id", "content_head", "variant"),
    Index(None, "destination", "site_id", "path_hash"),
    Index(None, "site_id", "day"),
    Index(None, "status"),
)

# --- the days a file's content covers, with its hits on each -----------------------------------
# A file spanning midnight feeds both days (scieloorg/usage counts a file toward its content's day).
# A file feeds its own ``day`` and every day listed here (files.feeds_day: one rule everywhere).
file_days = Table(
    "ledger_file_day",
    metadata,
    Column("file_id", Integer, ForeignKey("ledger_file.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("hits", BigInteger, nullable=False),
    Index(None, "day"),
)

# --- delivery checkpoint per (file, lane) ------------------------------------------------------
lanes = Table(
    "ledger_lane",
    metadata,
    Column("file_id", Integer, ForeignKey("ledger_file.id", ondelete="CASCADE"), primary_key=True),
    Column("lane", Integer, primary_key=True, autoincrement=False),
    Column("delivered_through", BigInteger, nullable=False),  # 0 = nothing delivered
    Column("in_flight_through", BigInteger, nullable=True),  # NULL = nothing in flight
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- lines Matomo refused (its invalid_indices, mapped to line numbers) ------------------------
rejected_lines = Table(
    "ledger_rejected_line",
    metadata,
    Column("file_id", Integer, ForeignKey("ledger_file.id", ondelete="CASCADE"), primary_key=True),
    Column("line_no", BigInteger, primary_key=True, autoincrement=False),
)

# --- one row per import attempt (SciELO control_log_file_summary) ------------------------------
summaries = Table(
    "ledger_summary",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("ledger_file.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(STATUS_LEN), nullable=True),
    Column("lines_total", BigInteger, nullable=True),
    Column("tracked", BigInteger, nullable=True),
    Column("pages", BigInteger, nullable=True),
    Column("downloads", BigInteger, nullable=True),
    Column("bots", BigInteger, nullable=True),
    Column("static", BigInteger, nullable=True),
    Column("http_errors", BigInteger, nullable=True),
    Column("http_redirects", BigInteger, nullable=True),
    Column("filtered", BigInteger, nullable=True),
    Column("invalid", BigInteger, nullable=True),
    Column("delivered", BigInteger, nullable=True),
    Column("rejected", BigInteger, nullable=True),
    # Double, not Float: Dagster registers a MySQL compile hook that turns a bare Float into
    # FLOAT(32) (= DOUBLE) once its storage is imported, so Float would drift by import order.
    Column("seconds", Double, nullable=True),
    Column("format_name", String(64), nullable=True),
    Column("compression", String(16), nullable=True),
    Column("incomplete", Boolean, nullable=True),
    Column("message", String(MESSAGE_MAX), nullable=True),
    Index(None, "file_id"),
)

# --- expected files per site and day, as date ranges (scieloorg/usage CollectionLogFilesPerDay) -
expected_files = Table(
    "ledger_expected_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("site_id", Integer, nullable=False),
    Column("start_day", Date, nullable=False),
    Column("end_day", Date, nullable=True),  # NULL = open-ended
    Column("count", Integer, nullable=False),
    UniqueConstraint("site_id", "start_day"),
)

# --- one row per (site, day) (SciELO control_date_status) --------------------------------------
days = Table(
    "ledger_day",
    metadata,
    Column("destination", String(DESTINATION_MAX), primary_key=True, server_default=LEGACY_DESTINATION),
    Column("site_id", Integer, primary_key=True, autoincrement=False),
    Column("day", Date, primary_key=True),
    Column("status", String(STATUS_LEN), nullable=False),
    Column("expected", Integer, nullable=False),
    Column("found", Integer, nullable=False),
    Column("loaded", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status"),
)

# --- Matomo archiving per (site, day): when, by which runner, covering deliveries up to when ---
# The matomo_archive stage re-archives a day only when a delivery finished after
# ``deliveries_through`` (GDS archived unconditionally; EEA invalidated every imported day).
archives = Table(
    "ledger_archive",
    metadata,
    Column("destination", String(DESTINATION_MAX), primary_key=True, server_default=LEGACY_DESTINATION),
    Column("site_id", Integer, primary_key=True, autoincrement=False),
    Column("day", Date, primary_key=True),
    Column("deliveries_through", UTCDateTime, nullable=False),  # last delivery the archive covers
    Column("archived_at", UTCDateTime, nullable=False),
    Column("runner", String(32), nullable=False),
    Column("message", String(MESSAGE_MAX), nullable=True),
)

# One Matomo writer per site (analytics_ingest.site_writer): a lock row per (destination, site).
site_writers = Table(
    "ledger_site_writer",
    metadata,
    Column("destination", String(DESTINATION_MAX), primary_key=True),
    Column("site_id", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(OWNER_MAX), nullable=True),
    Column("what", String(OWNER_MAX), nullable=True),  # what the holder does, shown to whoever waits
    Column("since", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
)

SUMMARY_FIELDS = tuple(c.name for c in summaries.columns if c.name not in ("id", "file_id"))

__all__ = [
    "metadata",
    "files",
    "file_days",
    "lanes",
    "rejected_lines",
    "summaries",
    "expected_files",
    "days",
    "archives",
    "site_writers",
    "UTCDateTime",
    "SUMMARY_FIELDS",
]
