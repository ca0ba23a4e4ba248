"""The ledger's foundation: its database, one connection per thread, one transaction per call.

The capability mixins (:mod:`.files`, :mod:`.leases`, :mod:`.lanes`, :mod:`.summaries`,
:mod:`.days`, :mod:`.archives`, :mod:`.site_writers`) build on what this class gives them:
``_run`` (a transaction, retried on deadlocks), ``destination`` and ``_mine`` (this destination's
rows), and the dialect's insert forms ``_upsert`` / ``_insert_ignore`` (built once, cached).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Callable

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from ..errors import ConfigError
from . import migrate as _migrate
from . import schema as S
from .database import SQLITE_BEGIN, engine_for, one_line, redact_raw, sqlite_setup_lock

OUTBOX_DESTINATION = "outbox"  # the offline outbox; a Matomo is "matomo:<base URL>" (config.Settings)
_IDLE_REFRESH_SECONDS = 300.0  # a server connection idle longer than this is re-checked out (pre-ping)


class LedgerBase:
    """Connections and transactions of :class:`analytics_ingest.ledger.Ledger`."""

    def __init__(self, url: str, *, migrate: bool = True, destination: str = OUTBOX_DESTINATION) -> None:
        if not destination or len(destination) > S.DESTINATION_MAX or destination == S.LEGACY_DESTINATION:
            raise ValueError(f"destination must be 1 to {S.DESTINATION_MAX} characters and not {S.LEGACY_DESTINATION!r}")
        # Every file, day and archive row this object reads or writes belongs to this destination.
        self.destination = destination
        self._closed = False
        self._lock = threading.RLock()
        self._sqlite_writer = threading.RLock()  # see _run
        self._local = threading.local()
        self._conns: set[Connection] = set()
        self._stmts: dict[Any, Any] = {}
        try:
            parsed = make_url(url)
        except Exception:  # noqa: BLE001 - any parse failure is a configuration problem
            raise ConfigError(
                f"ledger URL {redact_raw(url)} is not a database URL; use e.g. sqlite:///path/to/ledger.sqlite "
                "or postgresql+psycopg2://user@host:5432/dbname"
            ) from None
        self.url_for_display: str = parsed.render_as_string(hide_password=True)
        secret = parsed.password if parsed.password else None
        try:
            self._engine: Engine = engine_for(parsed)
        except Exception as exc:  # noqa: BLE001 - unknown dialect, missing driver, bad option
            raise ConfigError(
                f"cannot use ledger URL {self.url_for_display}: {type(exc).__name__}: {one_line(exc, secret)}; "
                "check the scheme and driver (sqlite:///…, postgresql+psycopg2://…, mysql+pymysql://…)"
            ) from None
        self._dialect = self._engine.dialect.name
        if self._dialect == "mariadb":
            self._dialect = "mysql"
        self._sqlite = self._dialect == "sqlite"
        with sqlite_setup_lock(parsed):
            self._connect_and_migrate(migrate, secret)
            if migrate:
                self._adopt_legacy_rows()
        self._prepare_statements()

    def _prepare_statements(self) -> None:
        """Build the statements of the hot path once (mixins extend this, calling super())."""

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
            reason = one_line(getattr(exc, "orig", None) or exc, secret)
            raise ConfigError(
                f"cannot connect to the ledger database {self.url_for_display}: {reason}; check the ledger URL "
                "(host, port, user, database name) and that the database server is running"
            ) from None
        if migrate:
            try:
                self._release_thread_connection()  # DDL on MariaDB/SQLite goes better without our open conn
                if not _migrate.is_current(self._engine):
                    _migrate.create_or_upgrade(self._engine)
            except Exception as exc:  # noqa: BLE001
                self.close()
                reason = one_line(getattr(exc, "orig", None) or exc, secret)
                raise ConfigError(
                    f"cannot bring the ledger database {self.url_for_display} to the current schema: "
                    f"{type(exc).__name__}: {reason}; check that the user may create tables there and that "
                    "this version of analytics-ingest is not older than the one that last used it"
                ) from None

    # -- connections: one per thread, kept for the thread's lifetime ----------------------------
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
        weakref.finalize(threading.current_thread(), LedgerBase._thread_ended, weakref.ref(self), conn)
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

    # -- transactions ---------------------------------------------------------------------------
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
                    conn.info[SQLITE_BEGIN] = "BEGIN" if read else "BEGIN IMMEDIATE"
                    if not read:
                        # This process's writers (four lanes, the site writer) take turns on a
                        # Python lock: SQLite's own busy handler makes a waiting writer sleep
                        # 1-100 ms between tries, which left lanes idle behind 0.2 ms writes.
                        with self._sqlite_writer, conn.begin():
                            return fn(conn)
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

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.url_for_display!r})"

    # -- the dialect's insert forms, built once ---------------------------------------------------
    def _insert(self, table):
        # The dialect's module is imported for the dialect in use only: PostgreSQL's alone costs
        # ~50 ms of every CLI start on a SQLite ledger.
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        if self._dialect == "mysql":
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            return mysql_insert(table)
        if self._sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
