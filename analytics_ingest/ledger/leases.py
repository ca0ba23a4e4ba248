"""File leases: one import per file at a time, with a fencing token per lease taken.

The generation that :meth:`Leases.acquire_lease` returns is the token every checkpoint write
carries (:meth:`analytics_ingest.ledger.lanes.Lanes.mark_in_flight`): once another import takes
the lease, the old owner's writes are refused.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from . import schema as S
from .values import now


class Leases:
    """Mixed into :class:`analytics_ingest.ledger.Ledger` (needs ``_run``)."""

    def acquire_lease(self, file_id: int, owner: str, ttl_seconds: float) -> int | None:
        """Take the file's lease if it is free, expired or already ours. Atomic across processes.

        Returns the lease's generation (the fencing token, >= 1), or None when someone else holds
        it. Every take, even by the same owner, starts a new generation: checkpoint writes of an
        older one are refused (:meth:`mark_in_flight` with ``fence``)."""
        if not owner or len(owner) > S.OWNER_MAX:
            raise ValueError(f"lease owner must be 1 to {S.OWNER_MAX} characters long")
        F = S.files.c

        def work(conn: Connection) -> int | None:
            at = now()
            taken = conn.execute(
                update(S.files)
                .where(F.id == int(file_id), or_(F.lease_owner.is_(None), F.lease_expires_at < at, F.lease_owner == owner))
                .values(lease_owner=owner, lease_expires_at=at + dt.timedelta(seconds=ttl_seconds),
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
        stmt = update(S.files).where(*where).values(lease_expires_at=now() + dt.timedelta(seconds=ttl_seconds))
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
        if row.lease_expires_at <= now():
            return None
        return row.lease_owner, row.lease_expires_at
