"""Ask Matomo which hits of a batch it already stored, by their ``pv_id``.

Used to settle a batch whose fate is unknown: the one in flight when an import crashed, or one
whose request failed in a way that may have happened after Matomo committed it (HTTP 500 after
commit, a timeout, a reset, a partial answer). Two ways to ask:

* Matomo's MySQL database (``MATOMO_DB_URL``): one indexed query per batch.
* The Reporting API (``Live.getLastVisitsDetails`` filtered by the batch's IPs): no database
  access needed, slower, only used for the few batches that need settling.
"""

from __future__ import annotations

import datetime as dt
import json

from .api import MatomoApi
from .batches import Batch


def _day_range(batch: Batch) -> tuple[str, str]:
    days = sorted({item[3][:10] for item in batch.items})
    first = dt.date.fromisoformat(days[0]) - dt.timedelta(days=1)
    last = dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)
    return first.isoformat(), last.isoformat()


def _user_id(request_json: str) -> str | None:
    if '"uid":' not in request_json:
        return None
    return json.loads(request_json).get("uid")


class ApiLookup:
    def __init__(self, api: MatomoApi, idsite: int) -> None:
        self.api = api
        self.idsite = idsite

    def present(self, batch: Batch) -> set[str]:
        if not batch.items:
            return set()
        wanted = batch.pv_ids()
        first, last = _day_range(batch)
        ips = sorted({item[2] for item in batch.items})
        user_ids = sorted({uid for item in batch.items if (uid := _user_id(item[4]))})
        found = self.api.visits_with_pageviews(self.idsite, first, last, ips, user_ids)
        return {pv for pv, _ts in found if pv in wanted}


class MysqlLookup:
    """Look-ups straight in ``<prefix>log_link_visit_action`` (indexed on idsite, server_time)."""

    def __init__(self, db_url: str, idsite: int, prefix: str = "matomo_") -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.engine = sa.create_engine(db_url, pool_pre_ping=True)
        self.idsite = idsite
        self.table = f"{prefix}log_link_visit_action"

    def present(self, batch: Batch) -> set[str]:
        if not batch.items:
            return set()
        sa = self._sa
        times = sorted(item[3] for item in batch.items)
        query = sa.text(
            f"SELECT idpageview FROM {self.table} WHERE idsite = :idsite "
            "AND server_time BETWEEN :first AND :last AND idpageview IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        with self.engine.connect() as conn:
            rows = conn.execute(
                query,
                {"idsite": self.idsite, "first": times[0], "last": times[-1], "ids": sorted(batch.pv_ids())},
            )
            return {row[0] for row in rows}
