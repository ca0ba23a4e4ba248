"""Lane checkpoints: how far each lane of a file was delivered, what was in flight, and the lines
Matomo rejected.

:meth:`Lanes.mark_in_flight` runs once per batch, so its statements are built once, when the
ledger opens, and a checkpoint costs one short transaction (one statement on SQLite).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.engine import Connection

from ..errors import LeaseLost
from . import schema as S
from .values import now


class Lanes:
    """Mixed into :class:`analytics_ingest.ledger.Ledger` (needs ``_run``, ``_upsert``,
    ``_insert_ignore``, ``_sqlite``)."""

    def _prepare_statements(self) -> None:
        super()._prepare_statements()
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
        params = {"b_file": file_id, "b_lane": lane, "b_flight": in_flight_through, "b_at": now()}
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
