"""Fresh, empty ledger databases for tests: SQLite always, PostgreSQL and MariaDB when running.

``ledger_url`` is parametrized over the three backends; each test gets its own database, dropped
afterwards. PostgreSQL and MariaDB skip when their server is absent (and fail under ``CI=true``,
see :func:`analytics_ingest_tests.services.require_service`).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine

from analytics_ingest_tests.services import MARIADB_HOST, MARIADB_PORT, PG_HOST, PG_PORT, require_service

PG_ADMIN_URL = f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/test"
MARIADB_ADMIN_URL = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/test?charset=utf8mb4"


def _db_name() -> str:
    return f"ai_{uuid.uuid4().hex[:16]}"


def _sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger' / 'ledger.sqlite'}"


def _postgresql_url():
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    name = _db_name()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.dispose()


def _mariadb_url():
    require_service("MariaDB", MARIADB_HOST, MARIADB_PORT)
    name = _db_name()
    admin = create_engine(MARIADB_ADMIN_URL)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
        yield f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}?charset=utf8mb4"
    finally:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def ledger_url(request, tmp_path):
    """URL of a fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield _sqlite_url(tmp_path)
    elif request.param == "postgresql":
        yield from _postgresql_url()
    else:
        yield from _mariadb_url()


@pytest.fixture
def sqlite_ledger_url(tmp_path):
    """URL of a fresh SQLite ledger file (not created yet) under ``tmp_path``."""
    return _sqlite_url(tmp_path)
