"""Alembic environment for the ledger.

Normally run through :func:`analytics_ingest.ledger.migrate.upgrade`, which hands over an open
connection in ``config.attributes["connection"]``. Run from the ``alembic`` command line, it
connects to ``sqlalchemy.url`` of the ini file instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from analytics_ingest.ledger.schema import metadata

VERSION_TABLE = "ledger_alembic_version"

config = context.config
target_metadata = metadata


def _configure(**kw) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=config.attributes.get("version_table", VERSION_TABLE),
        compare_type=True,
        render_as_batch=True,  # SQLite can only ALTER through table copies
        **kw,
    )


def run_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
