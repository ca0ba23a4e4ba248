"""Opening the ledger's database: one SQLAlchemy engine per dialect, tuned for short transactions
from many threads, and error text that fits one line without the password."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

SQLITE_BUSY_MS = 30_000
# Connection.info key: the BEGIN statement the next SQLite transaction starts with (see begin below).
SQLITE_BEGIN = "analytics_ingest_begin"


def engine_for(url) -> Engine:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 8, "max_overflow": 56, "pool_timeout": 60}
    if backend in ("mysql", "mariadb"):
        kwargs["pool_recycle"] = 1800
        kwargs["isolation_level"] = "READ COMMITTED"  # fewer gap locks on the upserts
    if backend == "postgresql" and "connect_timeout" not in url.query:
        kwargs["connect_args"] = {"connect_timeout": 10}
    return create_engine(url, **kwargs)


def _sqlite_engine(url) -> Engine:
    database = url.database or ""
    memory = database in ("", ":memory:") or "mode=memory" in database
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000}
    if memory:
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:
        if not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args=connect_args, pool_size=8, max_overflow=56)

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every sqlite test
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        # Writers take the write lock up front (BEGIN IMMEDIATE) so they wait on busy_timeout
        # instead of failing when a read-then-write transaction meets another writer.
        conn.exec_driver_sql(conn.info.pop(SQLITE_BEGIN, "BEGIN IMMEDIATE"))

    return engine


@contextlib.contextmanager
def sqlite_setup_lock(url):
    """Serialise opening a SQLite ledger file across threads and processes.

    The first connection switches the file to WAL and the migration creates tables; SQLite
    answers "database is locked" at once (no busy wait) to another connection that opens the
    file meanwhile. A sidecar lock file makes concurrent openers (a sensor and a backfill
    starting together) take turns for this short step only.
    """
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        yield
        return
    import fcntl

    lock_path = Path(database).expanduser()
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{lock_path}.setup-lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def redact_raw(url: str) -> str:
    """Hide the password of a URL that SQLAlchemy could not even parse."""
    return re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", str(url))


def one_line(text: str, secret: str | None) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    if secret:
        line = line.replace(secret, "***")
    return line[:200]
