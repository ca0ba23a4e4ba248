"""The ledger: what was imported, how far each lane got, and the state of each day.

One :class:`Ledger` wraps one SQLAlchemy engine (SQLite, PostgreSQL or MariaDB/MySQL) and is safe
to share between threads: every thread gets its own connection, kept for the thread's lifetime
(returned to the pool when the thread ends), so the per-batch checkpoint write
(:meth:`Ledger.mark_in_flight`) costs one short transaction and no pool round trip.

Every method is one transaction. Times are UTC: stored naive, returned aware.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import operator
import re
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from sqlalchemy import and_, bindparam, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import StaticPool

from ..errors import ConfigError, LeaseLost
from ..vocabulary import (
    DAY_CALCULATED,
    DAY_DONE,
    DAY_LOADED,
    DAY_PARTIAL,
    DAY_PRETABLE,
    DAY_QUEUE,
    DAY_STATUSES,
    FILE_INVALID,
    FILE_KINDS,
    FILE_LOADED,
    FILE_PARTIAL,
    FILE_QUEUE,
    FILE_STATUSES,
    KIND_LOG,
)
from . import migrate as _migrate
from . import schema as S
from .site_writers import SiteWriters

DEFAULT_EXPECTED_FILES = 1
OUTBOX_DESTINATION = "outbox"  # the offline outbox; a Matomo is "matomo:<base URL>" (config.Settings)
LATER_DAY_STAGES = (DAY_PRETABLE, DAY_CALCULATED, DAY_DONE)
_UPDATABLE_FILE_FIELDS = ("size", "fingerprint", "fingerprint_len", "day", "status", "invalid_reason", "plan",
                          "path", "content_head", "raw_size", "raw_digest")
_IDLE_REFRESH_SECONDS = 300.0  # a server connection idle longer than this is re-checked out (pre-ping)
_SQLITE_BUSY_MS = 30_000
_SQLITE_BEGIN = "analytics_ingest_begin"


class ContentTaken(Exception):
    """Another process registered a content with this head and variant first."""


# --- records ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileRecord:
    id: int
    site_id: int
    path: str
    size: int
    fingerprint: str
    fingerprint_len: int
    day: dt.date | None
    status: str
    invalid_reason: str | None
    plan: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    kind: str = KIND_LOG
    content_head: str = ""
    variant: int = 0
    raw_size: int | None = None
    raw_digest: str | None = None


@dataclass(frozen=True)
class DayRecord:
    site_id: int
    day: dt.date
    status: str
    expected: int
    found: int
    loaded: int
    updated_at: dt.datetime


# --- helpers ------------------------------------------------------------------------------------
def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _path_hash(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()


def _as_date(value: dt.date | None, what: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise ValueError(f"{what} must be a date, not {type(value).__name__}")


def _check_file_status(status: str) -> str:
    if status not in FILE_STATUSES:
        raise ValueError(f"unknown file status {status!r}; expected one of {', '.join(FILE_STATUSES)}")
    return status


def _check_day_status(status: str) -> str:
    if status not in DAY_STATUSES:
        raise ValueError(f"unknown day status {status!r}; expected one of {', '.join(DAY_STATUSES)}")
    return status


def _redact_raw(url: str) -> str:
    """Hide the password of a URL that SQLAlchemy could not even parse."""
    return re.sub(r"(://[^:/@\s]*):[^@\s]*@", r"\1:***@", str(url))


def _one_line(text: str, secret: str | None) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    if secret:
        line = line.replace(secret, "***")
    return line[:200]


def _file_record(row) -> FileRecord:
    return FileRecord(
        id=row.id,
        site_id=row.site_id,
        path=row.path,
        size=row.size,
        fingerprint=row.fingerprint,
        fingerprint_len=row.fingerprint_len,
        day=row.day,
        status=row.status,
        invalid_reason=row.invalid_reason,
        plan=row.plan,
        created_at=row.created_at,
        updated_at=row.updated_at,
        kind=row.kind,
        content_head=row.content_head,
        variant=row.variant,
        raw_size=row.raw_size,
        raw_digest=row.raw_digest,
    )


def _day_record(row) -> DayRecord:
    return DayRecord(
        site_id=row.site_id,
        day=row.day,
        status=row.status,
        expected=row.expected,
        found=row.found,
        loaded=row.loaded,
        updated_at=row.updated_at,
    )


def _fmt_range(start: dt.date, end: dt.date | None) -> str:
    return f"{start.isoformat()}..{end.isoformat() if end else 'open'}"


_FILE_COLUMNS = [
    S.files.c[name]
    for name in (
        "id", "site_id", "path", "size", "fingerprint", "fingerprint_len", "day", "status",
        "invalid_reason", "plan", "created_at", "updated_at", "kind", "content_head", "variant", "raw_size", "raw_digest",
    )
]


def _feeds_day(day: dt.date):
    """The one rule for "this file belongs to day D" (ledger, asset metadata and CLI alike): D is
    the day the file is for (its ``day`` column: named for it, or most of its hits) or one of the
    site-local days its content covers (``ledger_file_day``: a log spilling past midnight feeds
    the next day too)."""
    FD = S.file_days.c
    covers = select(FD.file_id).where(FD.file_id == S.files.c.id, FD.day == day).exists()
    return or_(S.files.c.day == day, covers)


@contextlib.contextmanager
def _sqlite_setup_lock(url):
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


# --- the ledger ---------------------------------------------------------------------------------
class Ledger(SiteWriters):
    """Control tables for exactly-once imports (see the module docstring)."""

    def __init__(self, url: str, *, migrate: bool = True, destination: str = OUTBOX_DESTINATION) -> None:
        if not destination or len(destination) > S.DESTINATION_MAX or destination == S.LEGACY_DESTINATION:
            raise ValueError(f"destination must be 1 to {S.DESTINATION_MAX} characters and not {S.LEGACY_DESTINATION!r}")
        # Every file, day and archive row this object reads or writes belongs to this destination.
        self.destination = destination
        self._closed = False
        self._lock = threading.RLock()
        self._local = threading.local()
        self._conns: set[Connection] = set()
        self._stmts: dict[Any, Any] = {}
        try:
            parsed = make_url(url)
        except Exception:  # noqa: BLE001 - any parse failure is a configuration problem
            raise ConfigError(
                f"ledger URL {_redact_raw(url)} is not a database URL; use e.g. sqlite:///path/to/ledger.sqlite "
                "or postgresql+psycopg2://user@host:5432/dbname"
            ) from None
        self.url_for_display: str = parsed.render_as_string(hide_password=True)
        secret = parsed.password if parsed.password else None
        try:
            self._engine: Engine = self._create_engine(parsed)
        except Exception as exc:  # noqa: BLE001 - unknown dialect, missing driver, bad option
            raise ConfigError(
                f"cannot use ledger URL {self.url_for_display}: {type(exc).__name__}: {_one_line(exc, secret)}; "
                "check the scheme and driver (sqlite:///…, postgresql+psycopg2://…, mysql+pymysql://…)"
            ) from None
        self._dialect = self._engine.dialect.name
        if self._dialect == "mariadb":
            self._dialect = "mysql"
        self._sqlite = self._dialect == "sqlite"
        with _sqlite_setup_lock(parsed):
            self._connect_and_migrate(migrate, secret)
            if migrate:
                self._adopt_legacy_rows()
        self._prepare_statements()

    def _adopt_legacy_rows(self) -> None:
        """Rows from before destinations existed go to the first destination that opens the ledger
        (one ledger had one destination then); once any row has a destination this does nothing."""
        tables = (S.files, S.days, S.archives)

        def work(conn: Connection) -> None:
            legacy = conn.execute(
                select(S.files.c.id).where(S.files.c.destination == S.LEGACY_DESTINATION).limit(1)
            ).first() or conn.execute(
                select(S.days.c.day).where(S.days.c.destination == S.LEGACY_DESTINATION).limit(1)
            ).first()
            if legacy is None:
                return
            for table in tables:
                owned = conn.execute(
                    select(table.c.destination).where(table.c.destination != S.LEGACY_DESTINATION).limit(1)
                ).first()
                if owned is not None:
                    return  # already in use by destinations: leave legacy rows alone
            for table in tables:
                conn.execute(update(table).where(table.c.destination == S.LEGACY_DESTINATION)
                             .values(destination=self.destination))

        self._run(work)

    def _mine(self):
        """Rows of ``ledger_file`` that belong to this ledger's destination."""
        return S.files.c.destination == self.destination

    def _connect_and_migrate(self, migrate: bool, secret: str | None) -> None:
        try:
            self._run(lambda conn: conn.exec_driver_sql("SELECT 1").scalar(), read=True, retry=False)
        except Exception as exc:  # noqa: BLE001
            self._engine.dispose()
            reason = _one_line(getattr(exc, "orig", None) or exc, secret)
            raise ConfigError(
                f"cannot connect to the ledger database {self.url_for_display}: {reason}; check the ledger URL "
                "(host, port, user, database name) and that the database server is running"
            ) from None
        if migrate:
            try:
                self._release_thread_connection()  # DDL on MariaDB/SQLite goes better without our open conn
                _migrate.upgrade(self._engine)
            except Exception as exc:  # noqa: BLE001
                self.close()
                reason = _one_line(getattr(exc, "orig", None) or exc, secret)
                raise ConfigError(
                    f"cannot bring the ledger database {self.url_for_display} to the current schema: "
                    f"{type(exc).__name__}: {reason}; check that the user may create tables there and that "
                    "this version of analytics-ingest is not older than the one that last used it"
                ) from None

    # -- engine and connections -------------------------------------------------------------
    @staticmethod
    def _create_engine(url) -> Engine:
        backend = url.get_backend_name()
        if backend == "sqlite":
            database = url.database or ""
            memory = database in ("", ":memory:") or "mode=memory" in database
            connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": _SQLITE_BUSY_MS / 1000}
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
                cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
                if not memory:
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn):
                # Writers take the write lock up front (BEGIN IMMEDIATE) so they wait on busy_timeout
                # instead of failing when a read-then-write transaction meets another writer.
                conn.exec_driver_sql(conn.info.pop(_SQLITE_BEGIN, "BEGIN IMMEDIATE"))

            return engine
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 8, "max_overflow": 56, "pool_timeout": 60}
        if backend in ("mysql", "mariadb"):
            kwargs["pool_recycle"] = 1800
            kwargs["isolation_level"] = "READ COMMITTED"  # fewer gap locks on the upserts
        if backend == "postgresql" and "connect_timeout" not in url.query:
            kwargs["connect_args"] = {"connect_timeout": 10}
        return create_engine(url, **kwargs)

    def _conn(self) -> Connection:
        local = self._local
        conn: Connection | None = getattr(local, "conn", None)
        now = time.monotonic()
        if conn is not None:
            if conn.closed or conn.invalidated:
                self._discard(conn)
            elif not self._sqlite and now - local.used > _IDLE_REFRESH_SECONDS:
                self._discard(conn)  # back to the pool; the next checkout pre-pings it
            else:
                local.used = now
                return conn
        if self._closed:
            raise RuntimeError("the ledger is closed")
        conn = self._engine.connect()
        local.conn, local.used = conn, now
        with self._lock:
            self._conns.add(conn)
        # Give the connection back when this thread goes away (no strong reference to the ledger).
        weakref.finalize(threading.current_thread(), Ledger._thread_ended, weakref.ref(self), conn)
        return conn

    @staticmethod
    def _thread_ended(ledger_ref, conn: Connection) -> None:
        ledger = ledger_ref()
        if ledger is not None:
            with ledger._lock:
                ledger._conns.discard(conn)
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass

    def _discard(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - already broken; nothing to give back
            pass

    def _release_thread_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._discard(conn)

    def _is_retryable(self, exc: DBAPIError) -> bool:
        orig = exc.orig
        if self._dialect == "postgresql":
            return getattr(orig, "pgcode", None) in ("40P01", "40001")
        if self._dialect == "mysql":
            code = orig.args[0] if getattr(orig, "args", None) else None
            return code in (1213, 1205)
        return False

    def _run(self, fn: Callable[[Connection], Any], *, read: bool = False, retry: bool = True) -> Any:
        """Run ``fn(conn)`` in one transaction on this thread's connection.

        Deadlocks / serialisation failures are retried (the transaction was rolled back). A lost
        connection is replaced and, when ``retry``, the call is repeated once.
        """
        attempt = 0
        while True:
            conn = self._conn()
            try:
                if self._sqlite:
                    conn.info[_SQLITE_BEGIN] = "BEGIN" if read else "BEGIN IMMEDIATE"
                with conn.begin():
                    return fn(conn)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    self._discard(conn)
                    if retry and attempt == 0:
                        attempt += 1
                        continue
                elif self._is_retryable(exc) and attempt < 5:
                    attempt += 1
                    time.sleep(0.01 * attempt)
                    continue
                raise

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
            self._conns.clear()
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self._local = threading.local()
        self._engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url_for_display!r})"

    # -- statements built once --------------------------------------------------------------
    def _insert(self, table):
        if self._dialect == "postgresql":
            return pg_insert(table)
        if self._dialect == "mysql":
            return mysql_insert(table)
        if self._sqlite:
            return sqlite_insert(table)
        return insert(table)

    def _upsert(self, table, keys: tuple[str, ...], update_cols: tuple[str, ...]):
        cache_key = ("upsert", table.name, keys, update_cols)
        stmt = self._stmts.get(cache_key)
        if stmt is None:
            ins = self._insert(table)
            if self._dialect == "mysql":
                stmt = ins.on_duplicate_key_update({c: ins.inserted[c] for c in update_cols})
            else:
                stmt = ins.on_conflict_do_update(
                    index_elements=list(keys), set_={c: ins.excluded[c] for c in update_cols}
                )
            self._stmts[cache_key] = stmt
        return stmt

    def _insert_ignore(self, table):
        cache_key = ("ignore", table.name)
        stmt = self._stmts.get(cache_key)
        if stmt is None:
            ins = self._insert(table)
            if self._dialect == "mysql":
                first = next(iter(table.primary_key.columns)).name
                stmt = ins.on_duplicate_key_update({first: ins.inserted[first]})
            else:
                stmt = ins.on_conflict_do_nothing()
            self._stmts[cache_key] = stmt
        return stmt

    def _prepare_statements(self) -> None:
        F = S.files.c
        self._fence_check = (
            select(F.lease_owner, F.lease_generation).where(F.id == bindparam("b_file")).with_for_update()
        )
        L = S.lanes
        where = and_(L.c.file_id == bindparam("b_file"), L.c.lane == bindparam("b_lane"))
        self._lane_set_flight = (
            update(L).where(where).values(in_flight_through=bindparam("b_flight"), updated_at=bindparam("b_at"))
        )
        self._lane_set_both = (
            update(L)
            .where(where)
            .values(
                in_flight_through=bindparam("b_flight"),
                delivered_through=bindparam("b_done"),
                updated_at=bindparam("b_at"),
            )
        )
        # SQLite: the fence goes into the UPDATE itself (one statement per checkpoint; the whole
        # database is locked for the transaction anyway, so no row lock is needed to order it
        # against a take-over). Servers lock the file row first (see mark_in_flight).
        fenced = select(F.id).where(F.id == bindparam("b_file"), F.lease_owner == bindparam("b_owner"),
                                    F.lease_generation == bindparam("b_gen")).exists()
        self._lane_set_flight_fenced = self._lane_set_flight.where(fenced)
        self._lane_set_both_fenced = self._lane_set_both.where(fenced)
        self._lane_upsert_flight = self._upsert(L, ("file_id", "lane"), ("in_flight_through", "updated_at"))
        self._lane_upsert_both = self._upsert(
            L, ("file_id", "lane"), ("in_flight_through", "delivered_through", "updated_at")
        )

    # -- files ------------------------------------------------------------------------------
    def register_file(
        self,
        *,
        path: str,
        site_id: int,
        size: int,
        fingerprint: str,
        fingerprint_len: int,
        day: dt.date | None = None,
        status: str = FILE_QUEUE,
        kind: str = KIND_LOG,
        content_head: str | None = None,
        new_variant: bool = False,
        variant: int | None = None,
        raw_size: int | None = None,
        raw_digest: str | None = None,
    ) -> FileRecord:
        """Add a content for this destination; a content already known (same head and fingerprint)
        is returned unchanged. ``content_head`` defaults to the fingerprint. ``new_variant``
        registers it again as another content (a file re-written in place, imported with --force).

        With an explicit ``variant`` (what :mod:`analytics_ingest.weblogs.file_identity` passes after
        comparing the content with every known one of that head) the row is inserted as is, and
        :class:`ContentTaken` says another process registered that head meanwhile: compare again.
        """
        _check_file_status(status)
        if kind not in FILE_KINDS:
            raise ValueError(f"unknown file kind {kind!r}; use one of {', '.join(FILE_KINDS)}")
        if not path or len(path) > S.PATH_MAX:
            raise ValueError(f"file path must be 1 to {S.PATH_MAX} characters long")
        day = _as_date(day, "day")
        head = content_head or fingerprint
        for _attempt in range(20):
            chosen = variant
            if chosen is None:
                same_head = self.files_with_head(site_id, head)
                if not new_variant:
                    for record in same_head:
                        if record.fingerprint == fingerprint and record.fingerprint_len == int(fingerprint_len):
                            return record
                chosen = max((r.variant for r in same_head), default=-1) + 1
            now = _now()
            values = dict(
                destination=self.destination, site_id=int(site_id), path=path, path_hash=_path_hash(path),
                content_head=head, variant=chosen, size=int(size), fingerprint=fingerprint,
                fingerprint_len=int(fingerprint_len), day=day, status=status, kind=kind,
                raw_size=None if raw_size is None else int(raw_size), raw_digest=raw_digest,
                created_at=now, updated_at=now,
            )
            try:
                new_id = self._run(lambda conn: conn.execute(insert(S.files).values(**values)).inserted_primary_key[0])
            except IntegrityError:
                if variant is not None:
                    raise ContentTaken(head) from None
                new_variant = False  # another process registered this head meanwhile: look again
                continue
            return self.get_file_by_id(new_id)
        raise RuntimeError(f"could not register {path}: too many concurrent registrations of the same content")

    def files_with_head(self, site_id: int, content_head: str) -> list[FileRecord]:
        """This destination's contents of the site whose first line hashes to ``content_head``."""
        F = S.files.c
        stmt = select(*_FILE_COLUMNS).where(
            self._mine(), F.site_id == int(site_id), F.content_head == content_head
        ).order_by(F.variant)
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return [_file_record(r) for r in rows]

    def get_file(self, site_id: int, path: str) -> FileRecord | None:
        """The content last seen at ``path`` (the newest such row of this destination)."""
        F = S.files.c
        stmt = select(*_FILE_COLUMNS).where(
            self._mine(), F.site_id == int(site_id), F.path_hash == _path_hash(path)
        ).order_by(F.id.desc())
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        for row in rows:
            if row.path == path:
                return _file_record(row)
        return None

    def get_file_by_id(self, file_id: int) -> FileRecord:
        stmt = select(*_FILE_COLUMNS).where(S.files.c.id == int(file_id))
        row = self._run(lambda conn: conn.execute(stmt).first(), read=True)
        if row is None:
            raise KeyError(f"no file with id {file_id} in the ledger")
        return _file_record(row)

    def list_files(
        self, site_id: int | None = None, day: dt.date | None = None, status: str | None = None
    ) -> list[FileRecord]:
        """Files by id; with ``day``, those whose ``day`` is it or whose content covers it."""
        stmt = select(*_FILE_COLUMNS).where(self._mine())
        if site_id is not None:
            stmt = stmt.where(S.files.c.site_id == int(site_id))
        if day is not None:
            stmt = stmt.where(_feeds_day(_as_date(day, "day")))
        if status is not None:
            stmt = stmt.where(S.files.c.status == _check_file_status(status))
        stmt = stmt.order_by(S.files.c.id)
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return [_file_record(r) for r in rows]

    def update_file(self, file_id: int, **fields) -> None:
        unknown = sorted(set(fields) - set(_UPDATABLE_FILE_FIELDS))
        if unknown:
            raise ValueError(f"cannot update file field(s) {', '.join(unknown)}; allowed: {', '.join(_UPDATABLE_FILE_FIELDS)}")
        if "status" in fields:
            _check_file_status(fields["status"])
        if "day" in fields:
            fields["day"] = _as_date(fields["day"], "day")
        if fields.get("invalid_reason") is not None:
            fields["invalid_reason"] = str(fields["invalid_reason"])[: S.REASON_MAX]
        for name in ("size", "fingerprint_len", "raw_size"):
            if name in fields and fields[name] is not None:
                fields[name] = int(fields[name])
        if "path" in fields:
            if not fields["path"] or len(fields["path"]) > S.PATH_MAX:
                raise ValueError(f"file path must be 1 to {S.PATH_MAX} characters long")
            fields["path_hash"] = _path_hash(fields["path"])
        fields["updated_at"] = _now()
        stmt = update(S.files).where(S.files.c.id == int(file_id)).values(**fields)
        rowcount = self._run(lambda conn: conn.execute(stmt).rowcount)
        if rowcount == 0:
            raise KeyError(f"no file with id {file_id} in the ledger")

    def files_for_day(self, site_id: int, day: dt.date) -> list[FileRecord]:
        """The site's files listed for ``day`` (same as ``list_files(site_id=..., day=...)``)."""
        if day is None:
            raise ValueError("day must be a date")
        return self.list_files(site_id=site_id, day=day)

    # -- the days a file's content covers ---------------------------------------------------
    def set_file_days(self, file_id: int, days: Mapping[dt.date, int]) -> None:
        """Replace the file's content days (day -> hits) in one transaction; ``{}`` clears them,
        after which the file feeds its ``day`` column's day only."""
        file_id = int(file_id)
        clean: dict[dt.date, int] = {}
        for key, hits in dict(days).items():
            day = _as_date(key, "day")
            if day is None:
                raise ValueError("file days must be dates, not None")
            if day in clean:
                raise ValueError(f"day {day.isoformat()} given twice for file {file_id}")
            try:
                count = operator.index(hits)
            except TypeError:
                raise ValueError(f"hits for {day.isoformat()} must be an integer, not {type(hits).__name__}") from None
            if count < 0:
                raise ValueError(f"hits for {day.isoformat()} must be 0 or more, not {count}")
            clean[day] = count
        FD = S.file_days
        rows = [{"file_id": file_id, "day": day, "hits": hits} for day, hits in sorted(clean.items())]

        def work(conn: Connection) -> None:
            # Lock the file row: concurrent replacements of the same file's days take turns.
            found = conn.execute(select(S.files.c.id).where(S.files.c.id == file_id).with_for_update()).scalar()
            if found is None:
                raise KeyError(f"no file with id {file_id} in the ledger")
            conn.execute(delete(FD).where(FD.c.file_id == file_id))
            if rows:
                conn.execute(insert(FD), rows)

        self._run(work)

    def file_days(self, file_id: int) -> dict[dt.date, int]:
        """The file's content days and hits, by day (``{}`` if none were set)."""
        FD = S.file_days.c
        stmt = select(FD.day, FD.hits).where(FD.file_id == int(file_id)).order_by(FD.day)
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return {r.day: r.hits for r in rows}

    def reset_file_progress(self, file_id: int) -> None:
        """Forget lanes, checkpoints, the plan and rejected lines (a changed file imported anew).

        The file's content days stay: they describe the file, not the progress of its import."""
        file_id = int(file_id)

        def work(conn: Connection) -> None:
            conn.execute(delete(S.lanes).where(S.lanes.c.file_id == file_id))
            conn.execute(delete(S.rejected_lines).where(S.rejected_lines.c.file_id == file_id))
            conn.execute(update(S.files).where(S.files.c.id == file_id).values(plan=None, updated_at=_now()))

        self._run(work)

    # -- leases -----------------------------------------------------------------------------
    def acquire_lease(self, file_id: int, owner: str, ttl_seconds: float) -> int | None:
        """Take the file's lease if it is free, expired or already ours. Atomic across processes.

        Returns the lease's generation (the fencing token, >= 1), or None when someone else holds
        it. Every take, even by the same owner, starts a new generation: checkpoint writes of an
        older one are refused (:meth:`mark_in_flight` with ``fence``)."""
        if not owner or len(owner) > S.OWNER_MAX:
            raise ValueError(f"lease owner must be 1 to {S.OWNER_MAX} characters long")
        F = S.files.c

        def work(conn: Connection) -> int | None:
            now = _now()
            taken = conn.execute(
                update(S.files)
                .where(F.id == int(file_id), or_(F.lease_owner.is_(None), F.lease_expires_at < now, F.lease_owner == owner))
                .values(lease_owner=owner, lease_expires_at=now + dt.timedelta(seconds=ttl_seconds),
                        lease_generation=F.lease_generation + 1)
            ).rowcount
            if taken != 1:
                return None
            return int(conn.execute(select(F.lease_generation).where(F.id == int(file_id))).scalar())

        return self._run(work)

    def renew_lease(self, file_id: int, owner: str, ttl_seconds: float, generation: int | None = None) -> bool:
        """Extend our lease; False if someone else holds it now (ours expired and was taken)."""
        F = S.files.c
        where = [F.id == int(file_id), F.lease_owner == owner]
        if generation is not None:
            where.append(F.lease_generation == int(generation))
        stmt = update(S.files).where(*where).values(lease_expires_at=_now() + dt.timedelta(seconds=ttl_seconds))
        return self._run(lambda conn: conn.execute(stmt).rowcount) == 1

    def release_lease(self, file_id: int, owner: str) -> None:
        F = S.files.c
        stmt = (
            update(S.files)
            .where(F.id == int(file_id), F.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        self._run(lambda conn: conn.execute(stmt))

    def lease_holder(self, file_id: int) -> tuple[str, dt.datetime] | None:
        F = S.files.c
        stmt = select(F.lease_owner, F.lease_expires_at).where(F.id == int(file_id))
        row = self._run(lambda conn: conn.execute(stmt).first(), read=True)
        if row is None or row.lease_owner is None or row.lease_expires_at is None:
            return None
        if row.lease_expires_at <= _now():
            return None
        return row.lease_owner, row.lease_expires_at

    # -- lanes / checkpoints ----------------------------------------------------------------
    def lanes(self, file_id: int) -> dict[int, tuple[int, int | None]]:
        return {lane: (done, flight) for lane, (done, flight, _at) in self.lane_states(file_id).items()}

    def lane_states(self, file_id: int) -> dict[int, tuple[int, int | None, dt.datetime]]:
        """Per lane: (delivered_through, in_flight_through, when that was written). The time is
        when the in-flight batch was about to be sent: it bounds when Matomo may still commit it."""
        L = S.lanes.c
        stmt = select(L.lane, L.delivered_through, L.in_flight_through, L.updated_at).where(L.file_id == int(file_id))
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return {r.lane: (r.delivered_through, r.in_flight_through, r.updated_at) for r in rows}

    def mark_in_flight(
        self, file_id: int, lane: int, in_flight_through: int | None, delivered_through: int | None = None,
        *, fence: tuple[str, int] | None = None,
    ) -> None:
        """Record the batch now being sent (and, in the same write, the one Matomo just confirmed).

        With ``fence`` = (owner, generation) the write happens only while that lease is the file's
        current one (checked under a row lock, so a take-over waits for it or it sees the
        take-over); otherwise :class:`LeaseLost` is raised and nothing is written."""
        params = {"b_file": file_id, "b_lane": lane, "b_flight": in_flight_through, "b_at": _now()}
        if delivered_through is None:
            stmt, fallback = self._lane_set_flight, self._lane_upsert_flight
        else:
            params["b_done"] = delivered_through
            stmt, fallback = self._lane_set_both, self._lane_upsert_both
        one_statement = fence is not None and self._sqlite
        if one_statement:
            params["b_owner"], params["b_gen"] = fence[0], int(fence[1])
            stmt = self._lane_set_flight_fenced if delivered_through is None else self._lane_set_both_fenced

        def check_fence(conn: Connection) -> None:
            row = conn.execute(self._fence_check, {"b_file": file_id}).first()
            if row is None or row.lease_owner != fence[0] or int(row.lease_generation) != int(fence[1]):
                raise LeaseLost(
                    "this import's lease on the file expired and another import took it over; "
                    "stopped without sending more (the other import continues)"
                )

        def work(conn: Connection) -> None:
            if fence is not None and not one_statement:
                check_fence(conn)
            if conn.execute(stmt, params).rowcount:
                return
            if one_statement:
                check_fence(conn)  # no row written: the lease was taken, or this lane's first write
            row = {
                "file_id": file_id,
                "lane": lane,
                "in_flight_through": in_flight_through,
                "delivered_through": delivered_through or 0,
                "updated_at": params["b_at"],
            }
            conn.execute(fallback, row)  # first write for this lane

        self._run(work)

    def add_rejected_lines(self, file_id: int, line_numbers: list[int]) -> None:
        lines = sorted({int(n) for n in line_numbers})
        if not lines:
            return
        stmt = self._insert_ignore(S.rejected_lines)
        rows = [{"file_id": int(file_id), "line_no": n} for n in lines]

        def work(conn: Connection) -> None:
            for i in range(0, len(rows), 1000):
                conn.execute(stmt, rows[i : i + 1000])

        self._run(work)

    def rejected_lines(self, file_id: int) -> list[int]:
        R = S.rejected_lines.c
        stmt = select(R.line_no).where(R.file_id == int(file_id)).order_by(R.line_no)
        return list(self._run(lambda conn: conn.execute(stmt).scalars().all(), read=True))

    # -- summaries --------------------------------------------------------------------------
    def add_summary(self, file_id: int, summary: dict) -> int:
        """Append one import attempt's summary; returns its id. Keys must be column names."""
        unknown = sorted(set(summary) - set(S.SUMMARY_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown summary field(s) {', '.join(unknown)}; allowed: {', '.join(S.SUMMARY_FIELDS)}"
            )
        values = dict(summary)
        if values.get("status") is not None:
            _check_file_status(values["status"])
        if values.get("message") is not None:
            values["message"] = str(values["message"])[: S.MESSAGE_MAX]
        if values.get("incomplete") is not None:
            values["incomplete"] = bool(values["incomplete"])
        if values.get("seconds") is not None:
            values["seconds"] = float(values["seconds"])
        values["file_id"] = int(file_id)
        stmt = insert(S.summaries).values(**values)
        # Not repeated after a lost connection: the row might already be there.
        return int(self._run(lambda conn: conn.execute(stmt).inserted_primary_key[0], retry=False))

    def summaries(self, file_id: int) -> list[dict]:
        T = S.summaries
        stmt = select(T).where(T.c.file_id == int(file_id)).order_by(T.c.id)
        rows = self._run(lambda conn: conn.execute(stmt).mappings().all(), read=True)
        return [dict(r) for r in rows]

    # -- expected files per site and day ----------------------------------------------------
    def set_expected_files(self, site_id: int, start: dt.date, end: dt.date | None, count: int) -> None:
        """Expect ``count`` files a day for ``site_id`` from ``start`` to ``end`` (inclusive; None = on)."""
        start = _as_date(start, "start")
        end = _as_date(end, "end")
        if start is None:
            raise ValueError("start must be a date")
        if end is not None and end < start:
            raise ValueError(f"range {_fmt_range(start, end)} ends before it starts")
        if int(count) < 0:
            raise ValueError("expected file count must be 0 or more")
        E = S.expected_files

        def work(conn: Connection) -> None:
            rows = conn.execute(
                select(E.c.id, E.c.start_day, E.c.end_day).where(E.c.site_id == int(site_id)).order_by(E.c.start_day)
            ).all()
            for row in rows:
                if row.start_day == start and row.end_day == end:
                    conn.execute(update(E).where(E.c.id == row.id).values(count=int(count)))
                    return
            for row in rows:
                if row.start_day <= (end or dt.date.max) and start <= (row.end_day or dt.date.max):
                    raise ValueError(
                        f"expected-files range {_fmt_range(start, end)} for site {site_id} overlaps the existing "
                        f"range {_fmt_range(row.start_day, row.end_day)}; give ranges that do not overlap"
                    )
            conn.execute(insert(E).values(site_id=int(site_id), start_day=start, end_day=end, count=int(count)))

        self._run(work)

    def _expected(self, conn: Connection, site_id: int, day: dt.date) -> int:
        E = S.expected_files.c
        value = conn.execute(
            select(E.count)
            .where(E.site_id == int(site_id), E.start_day <= day, or_(E.end_day.is_(None), E.end_day >= day))
            .limit(1)
        ).scalar()
        return DEFAULT_EXPECTED_FILES if value is None else int(value)

    def expected_files(self, site_id: int, day: dt.date) -> int:
        day = _as_date(day, "day")
        return self._run(lambda conn: self._expected(conn, site_id, day), read=True)

    # -- day status -------------------------------------------------------------------------
    def _day_counts(self, conn: Connection, site_id: int, day: dt.date) -> tuple[int, int, int, int, int]:
        """(expected, found, loaded, partial, own_loaded) for one site and day."""
        F = S.files.c
        rows = conn.execute(
            select(F.status, func.count())
            .where(self._mine(), F.site_id == int(site_id), F.kind == KIND_LOG, _feeds_day(day))
            .group_by(F.status)
        ).all()
        by_status = {status: n for status, n in rows}
        found = sum(n for status, n in by_status.items() if status != FILE_INVALID)
        # The expected count is met only by the day's own files (its main day, the `day` column):
        # yesterday's file spilling past midnight must not make today look complete.
        own_loaded = conn.execute(
            select(func.count()).where(self._mine(), F.site_id == int(site_id), F.kind == KIND_LOG, F.day == day,
                                       F.status == FILE_LOADED)
        ).scalar()
        return (
            self._expected(conn, site_id, day),
            found,
            by_status.get(FILE_LOADED, 0),
            by_status.get(FILE_PARTIAL, 0),
            own_loaded,
        )

    def _write_day(self, conn: Connection, site_id: int, day: dt.date, status: str, counts) -> None:
        expected, found, loaded = counts[:3]
        stmt = self._upsert(S.days, ("destination", "site_id", "day"),
                            ("status", "expected", "found", "loaded", "updated_at"))
        conn.execute(
            stmt,
            {
                "destination": self.destination,
                "site_id": int(site_id),
                "day": day,
                "status": status,
                "expected": expected,
                "found": found,
                "loaded": loaded,
                "updated_at": _now(),
            },
        )

    def recompute_day_status(self, site_id: int, day: dt.date, *, force: bool = False) -> str:
        """Derive the day's status from its files; a day past ``loaded`` stays put unless ``force``.

        A file feeds the day if it is the file's own day (``day`` column) or among its content days
        (:meth:`set_file_days`): :func:`_feeds_day`, the one rule the metadata and the CLI use too.

        Loaded needs every found (not invalid) file feeding the day loaded AND at least the expected
        number of the day's own files (``day`` column = the day) loaded, so a neighbour's file
        spilling past midnight cannot complete a day whose own file has not arrived. Some file
        loaded or partial -> partial; otherwise queue. Unlike SciELO's rule, more files than
        expected still count as loaded.
        """
        day = _as_date(day, "day")
        D = S.days.c

        def work(conn: Connection) -> str:
            counts = self._day_counts(conn, site_id, day)
            expected, found, loaded, partial, own_loaded = counts
            if own_loaded >= expected and loaded == found:
                status = DAY_LOADED
            elif loaded > 0 or partial > 0:
                status = DAY_PARTIAL
            else:
                status = DAY_QUEUE
            if not force:
                current = conn.execute(
                    select(D.status).where(D.destination == self.destination, D.site_id == int(site_id), D.day == day)
                ).scalar()
                if current in LATER_DAY_STAGES:
                    status = current  # keep the stage, refresh the counts
            self._write_day(conn, site_id, day, status, counts)
            return status

        return self._run(work)

    def set_day_status(self, site_id: int, day: dt.date, status: str) -> None:
        _check_day_status(status)
        day = _as_date(day, "day")

        def work(conn: Connection) -> None:
            self._write_day(conn, site_id, day, status, self._day_counts(conn, site_id, day))

        self._run(work)

    def advance_day(self, site_id: int, day: dt.date, status: str, *, after: tuple[str, ...]) -> bool:
        """Move the day to ``status`` if it is currently in one of ``after``; True if it moved.

        The later stages (pretable, calculated) only move forward from the stage before them, in
        one statement, so a day that an import stepped back meanwhile is not promoted by a stale
        pretable or metric run."""
        _check_day_status(status)
        for s in after:
            _check_day_status(s)
        day = _as_date(day, "day")
        D = S.days.c
        stmt = (
            update(S.days)
            .where(D.destination == self.destination, D.site_id == int(site_id), D.day == day, D.status.in_(after))
            .values(status=status, updated_at=_now())
        )
        return bool(self._run(lambda conn: conn.execute(stmt).rowcount))

    def files_feeding_day(self, site_id: int, day: dt.date) -> list[FileRecord]:
        """The site's files that count toward ``day`` (their content covers it), oldest first."""
        day = _as_date(day, "day")
        stmt = (
            select(*_FILE_COLUMNS)
            .where(self._mine(), S.files.c.site_id == int(site_id), _feeds_day(day))
            .order_by(S.files.c.id)
        )
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return [_file_record(r) for r in rows]

    # -- Matomo archiving ---------------------------------------------------------------------
    def last_delivery(self, site_id: int, day: dt.date) -> dt.datetime | None:
        """When the last import attempt that delivered hits to a file feeding ``day`` finished."""
        day = _as_date(day, "day")
        T, F = S.summaries.c, S.files.c
        stmt = (
            select(func.max(T.finished_at))
            .select_from(S.summaries.join(S.files, S.files.c.id == T.file_id))
            .where(self._mine(), F.site_id == int(site_id), _feeds_day(day), T.delivered > 0)
        )
        value = self._run(lambda conn: conn.execute(stmt).scalar(), read=True)
        if isinstance(value, str):  # SQLite's max() over a DATETIME column returns text
            value = dt.datetime.fromisoformat(value)
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value

    def archive_record(self, site_id: int, day: dt.date) -> dict | None:
        """The day's last recorded archive (deliveries_through, archived_at, runner, message)."""
        A = S.archives.c
        stmt = select(A.deliveries_through, A.archived_at, A.runner, A.message).where(
            A.destination == self.destination, A.site_id == int(site_id), A.day == _as_date(day, "day"))
        row = self._run(lambda conn: conn.execute(stmt).first(), read=True)
        return dict(row._mapping) if row is not None else None

    def archive_records(self, site_id: int) -> dict[dt.date, dict]:
        """Every recorded archive of the site, by day."""
        A = S.archives.c
        stmt = select(A.day, A.deliveries_through, A.archived_at, A.runner, A.message).where(
            A.destination == self.destination, A.site_id == int(site_id))
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return {r.day: dict(r._mapping) for r in rows}

    def record_archive(self, site_id: int, day: dt.date, *, deliveries_through: dt.datetime, runner: str,
                       message: str | None = None) -> None:
        stmt = self._upsert(S.archives, ("destination", "site_id", "day"),
                            ("deliveries_through", "archived_at", "runner", "message"))
        values = {
            "destination": self.destination, "site_id": int(site_id), "day": _as_date(day, "day"), "deliveries_through": deliveries_through,
            "archived_at": _now(), "runner": str(runner)[:32],
            "message": None if message is None else str(message)[: S.MESSAGE_MAX],
        }
        self._run(lambda conn: conn.execute(stmt, values))

    def day_status(self, site_id: int, day: dt.date) -> str | None:
        D = S.days.c
        stmt = select(D.status).where(D.destination == self.destination, D.site_id == int(site_id),
                                      D.day == _as_date(day, "day"))
        return self._run(lambda conn: conn.execute(stmt).scalar(), read=True)

    def day_statuses(self, site_id: int | None = None, since: dt.date | None = None) -> list[DayRecord]:
        D = S.days
        stmt = select(D).where(D.c.destination == self.destination)
        if site_id is not None:
            stmt = stmt.where(D.c.site_id == int(site_id))
        if since is not None:
            stmt = stmt.where(D.c.day >= _as_date(since, "since"))
        stmt = stmt.order_by(D.c.site_id, D.c.day)
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return [_day_record(r) for r in rows]


__all__ = ["Ledger", "ContentTaken", "OUTBOX_DESTINATION", "FileRecord", "DayRecord", "DEFAULT_EXPECTED_FILES", "LATER_DAY_STAGES"]
