"""Bring a ledger database to the newest schema with Alembic, configured in code.

A database that holds none of the ledger's tables is created at :data:`HEAD` straight from
:mod:`.schema` (what Alembic's cookbook calls building an up-to-date database from scratch): a
new ledger costs one ``CREATE`` per table instead of loading Alembic and replaying every
migration, a quarter of a second of a short import. Tests check that both ways give the same
schema and that the created one migrates down and up like any other.

No ``alembic.ini`` is needed: the script location is the ``migrations`` folder next to this file,
so it works from a source tree, an installed package and any working directory. The version is
kept in its own table (:data:`VERSION_TABLE`), so the ledger can share a database with other
Alembic users (Dagster's storage, for one).

For development, ``alembic -c <an ini with script_location = analytics_ingest/ledger/migrations
and sqlalchemy.url = ...> revision -m ...`` works too: ``env.py`` falls back to that URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, insert, inspect, text
from sqlalchemy.engine import Connection, Engine

from . import schema

if TYPE_CHECKING:  # Alembic is imported when a migration runs, not to open a current ledger
    from alembic.config import Config

VERSION_TABLE = "ledger_alembic_version"
# The newest revision in migrations/versions (a test checks it against Alembic's head): a ledger
# that says it is at HEAD is opened with one SELECT, without loading Alembic (~100 ms of start-up).
HEAD = "0005"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x4C45444745520001  # "LEDGER" + 1: serialises concurrent upgrades on PostgreSQL
_MYSQL_LOCK_NAME = "analytics_ingest_ledger_migrate"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    # ConfigParser interpolation: a '%' in the path must be doubled.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["version_table"] = VERSION_TABLE
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def is_current(engine: Engine) -> bool:
    """True when the database says it is at :data:`HEAD` (one SELECT; no version table: False)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    except Exception:  # noqa: BLE001 - no table yet (a new ledger) or unreadable: let the upgrade decide
        return False
    return rows == [HEAD]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (default: the newest). Idempotent."""
    from alembic import command

    _migrate(engine, command.upgrade, revision)


def create_or_upgrade(engine: Engine) -> None:
    """Bring the database to :data:`HEAD`: created from :mod:`.schema` when it holds none of the
    ledger's tables, else migrated by Alembic. Decided under the migration lock, so two processes
    opening one new ledger create it once."""

    def step(conn: Connection) -> None:
        existing = set(inspect(conn).get_table_names())
        if existing & (set(schema.metadata.tables) | {VERSION_TABLE}):
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
            return
        schema.metadata.create_all(conn)
        _version_table().create(conn)
        conn.execute(insert(_version_table()).values(version_num=HEAD))

    _locked(engine, step)


def _version_table() -> Table:
    """Alembic's version table as Alembic creates it (32-character revision, primary key named
    ``<table>_pkc``), so that later migrations find it as their own."""
    return Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False),
                 PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"))


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database behind ``engine`` back to ``revision``."""
    from alembic import command

    _migrate(engine, command.downgrade, revision)


def _migrate(engine: Engine, step, revision: str) -> None:
    _locked(engine, lambda conn: step(alembic_config(conn), revision))


def _locked(engine: Engine, work) -> None:
    """Run ``work(connection)`` in one transaction, alone among the processes migrating this
    database (an advisory lock on PostgreSQL, a named lock on MariaDB; SQLite callers hold
    :func:`.database.sqlite_setup_lock`)."""
    with engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect in ("mysql", "mariadb"):
            conn.exec_driver_sql(f"SELECT GET_LOCK('{_MYSQL_LOCK_NAME}', 120)")
            conn.commit()
        if dialect == "sqlite":
            # Batch migrations rebuild tables (create copy, drop, rename); with foreign keys on,
            # dropping ledger_file would cascade-delete every lane checkpoint. The pragma only
            # works outside a transaction, so it goes straight to the DBAPI connection.
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                work(conn)
        finally:
            if dialect == "sqlite":
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
            if dialect in ("mysql", "mariadb"):
                conn.exec_driver_sql(f"SELECT RELEASE_LOCK('{_MYSQL_LOCK_NAME}')")
                conn.commit()


__all__ = ["HEAD", "upgrade", "create_or_upgrade", "downgrade", "head_revision", "current_revision", "is_current", "alembic_config",
           "VERSION_TABLE", "MIGRATIONS_DIR"]
