"""The ledger's part of :mod:`analytics_ingest.site_writer`: one lock row per (destination, site)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from . import schema as S
from .values import now


@dataclass(frozen=True)
class SiteWriterRecord:
    owner: str
    what: str
    since: dt.datetime
    expires_at: dt.datetime


class SiteWriters:
    """Mixed into :class:`analytics_ingest.ledger.Ledger` (needs ``_run``, ``_insert_ignore``, ``destination``)."""

    def acquire_site_writer(self, site_id: int, owner: str, what: str, ttl_seconds: float) -> bool:
        """Take the site if it is free or expired. Atomic across processes and hosts."""
        if not owner or len(owner) > S.OWNER_MAX:
            raise ValueError(f"writer owner must be 1 to {S.OWNER_MAX} characters long")
        W = S.site_writers.c
        key = {"destination": self.destination, "site_id": int(site_id)}

        def work(conn: Connection) -> bool:
            conn.execute(self._insert_ignore(S.site_writers), key)
            at = now()
            return conn.execute(
                update(S.site_writers)
                .where(W.destination == self.destination, W.site_id == int(site_id),
                       or_(W.owner.is_(None), W.expires_at < at))
                .values(owner=owner, what=str(what)[: S.OWNER_MAX], since=at,
                        expires_at=at + dt.timedelta(seconds=ttl_seconds))
            ).rowcount == 1

        return self._run(work)

    def renew_site_writer(self, site_id: int, owner: str, ttl_seconds: float) -> bool:
        """Extend our hold; False if another writer holds the site now."""
        W = S.site_writers.c
        stmt = (update(S.site_writers)
                .where(W.destination == self.destination, W.site_id == int(site_id), W.owner == owner)
                .values(expires_at=now() + dt.timedelta(seconds=ttl_seconds)))
        return self._run(lambda conn: conn.execute(stmt).rowcount) == 1

    def release_site_writer(self, site_id: int, owner: str) -> None:
        W = S.site_writers.c
        stmt = (update(S.site_writers)
                .where(W.destination == self.destination, W.site_id == int(site_id), W.owner == owner)
                .values(owner=None, what=None, since=None, expires_at=None))
        self._run(lambda conn: conn.execute(stmt))

    def site_writer(self, site_id: int) -> SiteWriterRecord | None:
        """Who writes to the site now (None when free or expired)."""
        W = S.site_writers.c
        stmt = select(W.owner, W.what, W.since, W.expires_at).where(
            W.destination == self.destination, W.site_id == int(site_id))
        row = self._run(lambda conn: conn.execute(stmt).first(), read=True)
        if row is None or row.owner is None or row.expires_at is None or row.expires_at <= now():
            return None
        return SiteWriterRecord(row.owner, row.what or "", row.since, row.expires_at)
