"""Bring a ledger database to the newest schema with Alembic, configured in code.

No ``alembic.ini`` is needed: the script location is the ``migrations`` folder next to this file,
so it works from a source tree, an installed package and any working directory. The version is
kept in its own table (:data:`VERSION_TABLE`), so the ledger can share a database with other
Alembic users (Dagster's storage, for one).

For development, ``alembic -c <an ini with script_location = analytics_ingest/ledger/migrations
and sqlalchemy.url = ...> revision -m ...`` works too: ``env.py`` falls back to that URL.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

VERSION_TABLE = "ledger_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x4C45444745520001  # "LEDGER" + 1: serialises concurrent upgrades on PostgreSQL
_MYSQL_LOCK_NAME = "analytics_ingest_ledger_migrate"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    # ConfigParser interpolation: a '%' in the path must be doubled.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["version_table"] = VERSION_TABLE
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` (default: the newest). Idempotent."""
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database behind ``engine`` back to ``revision``."""
    _migrate(engine, command.downgrade, revision)


def _migrate(engine: Engine, step, revision: str) -> None:
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
                step(alembic_config(conn), revision)
        finally:
            if dialect == "sqlite":
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")
            if dialect in ("mysql", "mariadb"):
                conn.exec_driver_sql(f"SELECT RELEASE_LOCK('{_MYSQL_LOCK_NAME}')")
                conn.commit()


__all__ = ["upgrade", "downgrade", "head_revision", "current_revision", "alembic_config", "VERSION_TABLE", "MIGRATIONS_DIR"]
