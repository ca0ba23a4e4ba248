"""Import summaries: one row per import attempt of a file (SciELO's control_log_file_summary)."""

from __future__ import annotations

from sqlalchemy import insert, select

from . import schema as S
from .values import check_file_status


class Summaries:
    """Mixed into :class:`analytics_ingest.ledger.Ledger` (needs ``_run``)."""

    def add_summary(self, file_id: int, summary: dict) -> int:
        """Append one import attempt's summary; returns its id. Keys must be column names."""
        unknown = sorted(set(summary) - set(S.SUMMARY_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown summary field(s) {', '.join(unknown)}; allowed: {', '.join(S.SUMMARY_FIELDS)}"
            )
        values = dict(summary)
        if values.get("status") is not None:
            check_file_status(values["status"])
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
