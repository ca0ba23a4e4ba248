"""Days: how many files a site expects per day, and each day's status, derived from its files.

A day moves queue → partial → loaded from its files (:meth:`Days.recompute_day_status`); the
later stages (pretable, calculated) only forward from the stage before (:meth:`Days.advance_day`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection

from ..vocabulary import (
    DAY_CALCULATED,
    DAY_DONE,
    DAY_LOADED,
    DAY_PARTIAL,
    DAY_PRETABLE,
    DAY_QUEUE,
    FILE_INVALID,
    FILE_LOADED,
    FILE_PARTIAL,
    KIND_LOG,
)
from . import schema as S
from .files import feeds_day
from .records import FILE_COLUMNS, DayRecord, FileRecord, day_record, file_record
from .values import as_date, check_day_status, now

DEFAULT_EXPECTED_FILES = 1
LATER_DAY_STAGES = (DAY_PRETABLE, DAY_CALCULATED, DAY_DONE)


def _fmt_range(start: dt.date, end: dt.date | None) -> str:
    return f"{start.isoformat()}..{end.isoformat() if end else 'open'}"


class Days:
    """Mixed into :class:`analytics_ingest.ledger.Ledger` (needs ``_run``, ``_mine``, ``_upsert``,
    ``destination``)."""

    # -- expected files per site and day ----------------------------------------------------
    def set_expected_files(self, site_id: int, start: dt.date, end: dt.date | None, count: int) -> None:
        """Expect ``count`` files a day for ``site_id`` from ``start`` to ``end`` (inclusive; None = on)."""
        start = as_date(start, "start")
        end = as_date(end, "end")
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

    # -- day status -------------------------------------------------------------------------
    def _day_counts(self, conn: Connection, site_id: int, day: dt.date) -> tuple[int, int, int, int, int]:
        """(expected, found, loaded, partial, own_loaded) for one site and day."""
        F = S.files.c
        rows = conn.execute(
            select(F.status, func.count())
            .where(self._mine(), F.site_id == int(site_id), F.kind == KIND_LOG, feeds_day(day))
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
                "updated_at": now(),
            },
        )

    def recompute_day_status(self, site_id: int, day: dt.date, *, force: bool = False) -> str:
        """Derive the day's status from its files; a day past ``loaded`` stays put unless ``force``.

        A file feeds the day if it is the file's own day (``day`` column) or among its content days
        (:meth:`set_file_days`): :func:`~analytics_ingest.ledger.files.feeds_day`, the one rule the
        metadata and the CLI use too.

        Loaded needs every found (not invalid) file feeding the day loaded AND at least the expected
        number of the day's own files (``day`` column = the day) loaded, so a neighbour's file
        spilling past midnight cannot complete a day whose own file has not arrived. Some file
        loaded or partial -> partial; otherwise queue. Unlike SciELO's rule, more files than
        expected still count as loaded.
        """
        day = as_date(day, "day")
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

    def advance_day(self, site_id: int, day: dt.date, status: str, *, after: tuple[str, ...]) -> bool:
        """Move the day to ``status`` if it is currently in one of ``after``; True if it moved.

        The later stages (pretable, calculated) only move forward from the stage before them, in
        one statement, so a day that an import stepped back meanwhile is not promoted by a stale
        pretable or metric run."""
        check_day_status(status)
        for s in after:
            check_day_status(s)
        day = as_date(day, "day")
        D = S.days.c
        stmt = (
            update(S.days)
            .where(D.destination == self.destination, D.site_id == int(site_id), D.day == day, D.status.in_(after))
            .values(status=status, updated_at=now())
        )
        return bool(self._run(lambda conn: conn.execute(stmt).rowcount))

    def files_feeding_day(self, site_id: int, day: dt.date) -> list[FileRecord]:
        """The site's files that count toward ``day`` (their content covers it), oldest first."""
        day = as_date(day, "day")
        stmt = (
            select(*FILE_COLUMNS)
            .where(self._mine(), S.files.c.site_id == int(site_id), feeds_day(day))
            .order_by(S.files.c.id)
        )
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return [file_record(r) for r in rows]

    def day_status(self, site_id: int, day: dt.date) -> str | None:
        D = S.days.c
        stmt = select(D.status).where(D.destination == self.destination, D.site_id == int(site_id),
                                      D.day == as_date(day, "day"))
        return self._run(lambda conn: conn.execute(stmt).scalar(), read=True)

    def day_statuses(self, site_id: int | None = None, since: dt.date | None = None) -> list[DayRecord]:
        D = S.days
        stmt = select(D).where(D.c.destination == self.destination)
        if site_id is not None:
            stmt = stmt.where(D.c.site_id == int(site_id))
        if since is not None:
            stmt = stmt.where(D.c.day >= as_date(since, "since"))
        stmt = stmt.order_by(D.c.site_id, D.c.day)
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return [day_record(r) for r in rows]
