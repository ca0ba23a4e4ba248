"""Matomo archiving: when a day last received hits, and when it was last archived."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from . import schema as S
from .files import feeds_day
from .values import as_date, now


class Archives:
    """Mixed into :class:`analytics_ingest.ledger.Ledger` (needs ``_run``, ``_mine``, ``_upsert``,
    ``destination``)."""

    def last_delivery(self, site_id: int, day: dt.date) -> dt.datetime | None:
        """When the last import attempt that delivered hits to a file feeding ``day`` finished."""
        day = as_date(day, "day")
        T, F = S.summaries.c, S.files.c
        stmt = (
            select(func.max(T.finished_at))
            .select_from(S.summaries.join(S.files, S.files.c.id == T.file_id))
            .where(self._mine(), F.site_id == int(site_id), feeds_day(day), T.delivered > 0)
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
            A.destination == self.destination, A.site_id == int(site_id), A.day == as_date(day, "day"))
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
            "destination": self.destination, "site_id": int(site_id), "day": as_date(day, "day"), "deliveries_through": deliveries_through,
            "archived_at": now(), "runner": str(runner)[:32],
            "message": None if message is None else str(message)[: S.MESSAGE_MAX],
        }
        self._run(lambda conn: conn.execute(stmt, values))
