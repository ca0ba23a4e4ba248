"""Ask Matomo which hits of a batch it already stored, by their ``pv_id``.

Used to settle a batch whose fate is unknown: the one in flight when an import crashed, or one
whose request failed in a way that may have happened after Matomo committed it (HTTP 500 after
commit, a timeout, a reset, a partial answer). Two ways to ask:

* Matomo's MySQL database (``MATOMO_DB_URL``): one indexed query per batch.
* The Reporting API (``Live.getLastVisitsDetails``): no database access needed, slower, only used
  for the few batches that need settling.

How the Reporting API look-up finds a batch's hits (checked in the Matomo 4.12.3 source,
``orbiting/matomo`` commit 49069dae, folder ``matomo/``):

* There is no segment on the pageview id. ``plugins/Actions/Columns/IdPageview.php`` stores
  ``pv_id`` in ``log_link_visit_action.idpageview`` but sets no ``$segmentName``, and
  ``core/Columns/Dimension.php::configureSegments`` only makes a segment from one. So the id can
  only be read back from ``actionDetails[].idpageview`` of ``Live.getLastVisitsDetails``
  (``plugins/Actions/VisitorDetails.php`` selects ``log_link_visit_action.idpageview``).
* The old look-up selected visits with ``visitIp==<ip>``. With IP anonymisation (Privacy >
  Anonymize IP) Matomo stores the *masked* address in ``log_visit.location_ip``
  (``plugins/PrivacyManager/IPAnonymizer.php``, ``vendor/matomo/network/src/IPv4.php`` and
  ``IPv6.php``; the hook runs in ``plugins/CoreHome/Tracker/VisitRequestProcessor.php::
  afterRequestProcessed``), and the ``visitIp`` segment compares the binary of the given value
  (``plugins/CoreHome/Columns/VisitIp.php``), so the full IP matches nothing. User ids do not
  help either: a visit is recognised by user id whatever the IP.
* What is chosen: select visits by *when their actions happened*, which depends on neither IP
  nor user id. ``actionServerHour`` (``plugins/CoreHome/Columns/ServerTime.php``:
  ``HOUR(log_link_visit_action.server_time)``) and ``actionServerMinute``
  (``plugins/CoreHome/Columns/ServerMinute.php``: ``MINUTE(log_link_visit_action.server_time)``)
  are action segments on the UTC ``server_time``, which is the hit's ``cdt``. In a segment ``,``
  (OR) binds tighter than ``;`` (AND) (``core/Segment/SegmentExpression.php::getSql``), so
  ``actionServerHour==10,actionServerHour==11;actionServerMinute==59,actionServerMinute==0``
  selects the visits with an action at 10:59, 11:00 (and, as a harmless superset, 10:00 and
  11:59) -- one join of ``log_link_visit_action``, so both conditions hold on the same action.
  ``minTimestamp`` (``plugins/Live/Model.php``: ``visit_last_action_time > minTimestamp``, PHP
  runs in UTC, ``core/bootstrap.php``) drops visits that ended before the batch's first minute,
  and ``period=range`` with the batch's days padded by one on each side bounds the rest (Live
  filters on ``visit_last_action_time`` in the site's timezone, ``Model::getStartAndEndDate``;
  a visit ends before the next local midnight, Matomo's ``create_new_visit_after_midnight``).
  The answer is then searched client-side for the batch's ``pv_id`` values.
* Bounded requests: at most 24 hour and 60 minute conditions per segment (Matomo truncates a
  segment at 8192 characters, ``core/Segment.php::SEGMENT_TRUNCATE_LIMIT``), ``filter_limit``
  ``PAGE_SIZE`` visits per call (``plugins/Live/API.php``). A full page splits the batch's
  minutes in two and asks again; a single minute with more visits than a page is paged with
  ``filter_offset``, pages overlapping a little so that visits moving in the order while we read
  (new hits update ``visit_last_action_time``) are not skipped.
* An action's ``timestamp`` in the answer is its UTC ``server_time`` shifted by the site's UTC
  offset (``plugins/Actions/VisitorDetails.php`` builds it with ``Date::factory($serverTime,
  $siteTimezone)``, ``core/Date.php``). A found ``pv_id`` counts only when its action time is the
  hit's ``cdt`` up to such an offset (a multiple of 15 minutes, at most 14 h), which rules out
  another file's hit that happens to share the 6-character id.

When Live cannot be used the look-up raises :class:`LiveApiUnavailable` (a ``ConfigError``)
with one actionable line: Matomo answers "The plugin Live is not enabled. ..."
(``core/Exception/PluginDeactivatedException.php``), "Visits log is deactivated globally. ..." or
"... in website settings. ..." (``plugins/Live/Live.php::checkIsVisitorLogEnabled``), or "You
can't access this resource as it requires 'view' access for the website id = N."
(``core/Access.php``, ``lang/en.json`` ``General_ExceptionPrivilegeAccessWebsite``).
"""

from __future__ import annotations

import datetime as dt
import html

from ..errors import ConfigError
from .api import MatomoApi, MatomoApiError
from .batches import Batch

LIVE_METHOD = "Live.getLastVisitsDetails"
PAGE_SIZE = 100  # visits per Live call
PAGE_OVERLAP = 10  # visits re-read between consecutive pages of one minute
MAX_PAGES = 2000  # per minute: far beyond any real site, a guard against a server ignoring offsets
MAX_TZ_OFFSET = 14 * 3600  # the widest UTC offset (Pacific/Kiritimati), in seconds
TZ_STEP = 900  # every UTC offset is a multiple of 15 minutes
DB_HINT = "or set MATOMO_DB_URL for look-ups in Matomo's database"


class LiveApiUnavailable(ConfigError):
    """Matomo's Live API is missing or denied, so an interrupted batch cannot be settled by API.

    Not transient: retrying does not help. The message is one line naming the cause and the fix.
    """


def _live_unavailable(text: str, idsite: int) -> LiveApiUnavailable | None:
    """The one-line error for a Live answer that says Live is off or denied (None otherwise)."""
    low = html.unescape(text).lower()
    prefix = "cannot settle an interrupted batch: "
    if "plugin live is not enabled" in low or "api module live not found" in low or (
            "does not exist or is not available" in low and ("live\\api" in low or "module 'live'" in low)):
        why = "Matomo's Live API is not enabled (plugin Live deactivated) — activate it"
    elif "visits log is deactivated globally" in low:
        why = ("Matomo's Live API is disabled (visits log deactivated in General settings) — "
               "enable the visits log")
    elif "visits log is deactivated" in low:
        why = (f"Matomo's Live API is disabled for site {idsite} (visits log deactivated in the "
               "website's settings) — enable the visits log")
    elif "you can't access this resource" in low or "requires 'view' access" in low \
            or "you must be logged in" in low:
        why = (f"Matomo denies the Live API: MATOMO_API_TOKEN has no view access to site {idsite} — "
               "grant it")
    else:
        return None
    return LiveApiUnavailable(f"{prefix}{why} {DB_HINT}")


def _utc_seconds(cdt: str) -> int:
    text = cdt.strip()
    if text.isdigit():
        return int(text)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp())


def _day(ts: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=ts // 86400)


def _same_moment(action_ts, hit_times: set[int]) -> bool:
    """Is a Live action ``timestamp`` one of the hit times, up to the site's UTC offset?"""
    try:
        ts = int(action_ts)
    except (TypeError, ValueError):
        return True  # no usable time: the id alone decides
    return any(abs(ts - t) <= MAX_TZ_OFFSET and (ts - t) % TZ_STEP == 0 for t in hit_times)


class ApiLookup:
    """Settling through ``Live.getLastVisitsDetails``, selecting visits by action time (see above)."""

    page_size = PAGE_SIZE
    page_overlap = PAGE_OVERLAP

    def __init__(self, api: MatomoApi, idsite: int) -> None:
        self.api = api
        self.idsite = idsite
        self.calls = 0  # Live calls made, for tests and logs

    def present(self, batch: Batch) -> set[str]:
        if not batch.items:
            return set()
        wanted: dict[str, set[int]] = {}
        for item in batch.items:
            wanted.setdefault(item[1], set()).add(_utc_seconds(item[3]))
        minutes = sorted({t - t % 60 for times in wanted.values() for t in times})
        found: set[str] = set()
        self._search(minutes, wanted, found)
        return found

    def check(self) -> None:
        """Fail fast (LiveApiUnavailable) when Live is off or denied; one small call."""
        today = dt.datetime.now(dt.timezone.utc).date()
        self._call(today, today, None, None, 0, limit=1)

    # --- internals ------------------------------------------------------------------------------
    def _search(self, minutes: list[int], wanted: dict[str, set[int]], found: set[str]) -> None:
        if found >= wanted.keys():
            return
        visits = self._visits(minutes, 0)
        self._collect(visits, wanted, found)
        if len(visits) < self.page_size:
            return
        if len(minutes) > 1:  # a full page: ask for each half of the batch's minutes
            half = len(minutes) // 2
            self._search(minutes[:half], wanted, found)
            self._search(minutes[half:], wanted, found)
            return
        step = max(1, self.page_size - self.page_overlap)
        offset = 0
        for _ in range(MAX_PAGES):  # one busy minute: page through it
            if found >= wanted.keys():
                return
            offset += step
            visits = self._visits(minutes, offset)
            self._collect(visits, wanted, found)
            if len(visits) < self.page_size:
                return
        raise MatomoApiError(f"{LIVE_METHOD}: more than {MAX_PAGES} pages of visits in one minute")

    def _visits(self, minutes: list[int], offset: int) -> list:
        hours = sorted({m // 3600 % 24 for m in minutes})
        mins = sorted({m // 60 % 60 for m in minutes})
        segment = ";".join((",".join(f"actionServerHour=={h}" for h in hours),
                            ",".join(f"actionServerMinute=={m}" for m in mins)))
        first = _day(minutes[0]) - dt.timedelta(days=1)
        last = _day(minutes[-1]) + dt.timedelta(days=1)
        return self._call(first, last, segment, minutes[0] - 1, offset)

    def _call(self, first: dt.date, last: dt.date, segment, min_timestamp, offset: int,
              limit: int | None = None) -> list:
        self.calls += 1
        try:
            visits = self.api.call(
                LIVE_METHOD, idSite=self.idsite, period="range", date=f"{first},{last}",
                segment=segment, minTimestamp=min_timestamp, filter_limit=limit or self.page_size,
                filter_offset=offset,
            )
        except MatomoApiError as exc:
            unavailable = _live_unavailable(str(exc), self.idsite)
            if unavailable is not None:
                raise unavailable from None
            raise
        if not isinstance(visits, list):
            raise MatomoApiError(f"{LIVE_METHOD}: unexpected answer shape")
        return visits

    @staticmethod
    def _collect(visits: list, wanted: dict[str, set[int]], found: set[str]) -> None:
        for visit in visits:
            for action in (visit.get("actionDetails") or ()) if isinstance(visit, dict) else ():
                pv = action.get("idpageview")
                if pv and pv in wanted and _same_moment(action.get("timestamp"), wanted[pv]):
                    found.add(str(pv))


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
