"""A protocol-faithful fake Matomo on loopback, for the test suite.

Usage::

    with FakeMatomo(token="t0ken", sites={1: {"name": "Demo", "main_url": "https://example.org",
                                               "timezone": "UTC"}}) as fake:
        client = MatomoClient(fake.url, token="t0ken")   # fake.url == "http://127.0.0.1:<port>"
        fake.inject("500_after_commit", on_post=2)
        ...
        assert fake.duplicates() == {}
        assert fake.errors == []

What it speaks (modelled on Matomo 4/5 and on what ``import_logs.py`` sends, see
``shared/reference/matomo_import_logs.md`` §1):

Bulk tracking -- ``POST /matomo.php`` or ``/piwik.php`` (any query string, e.g.
``?queuedtracking=0``) with the JSON body ``{"requests": [...], "token_auth": "..."}``.

* Each request is a JSON object of parameters or a URL/query string ``"?a=b&c=d"``. As in
  Matomo, a *string* without a ``?query`` part is dropped silently (it is not in the batch at
  all, so later positions shift down by one). Parameter values are stored as strings (``1`` and
  ``true`` become ``"1"``, ``false``/``null`` become ``""``, objects and lists become JSON text).
* A request is valid when ``idsite`` is a configured site, ``rec`` is ``"1"``, one of ``url``,
  ``download`` or ``link`` is present, and ``cdt`` (when given) is ``YYYY-MM-DD HH:MM:SS`` (UTC),
  ISO 8601 or a Unix timestamp. Invalid requests are neither stored nor fatal: their 0-based
  positions come back in ``invalid_indices`` (only for a super-user token, as in Matomo; the
  configured token is a super user unless ``superuser=False``).
* A body that is not JSON, or has no ``requests`` list -> 400
  ``{"status":"error","tracked":0,"invalid":0,"message":...}``. A missing or wrong
  ``token_auth`` -> the same 400 shape, and nothing of the POST is stored (real Matomo refuses
  ``cdt`` older than 24 h without a token with admin rights; the fake treats every wrong token so).
* A POST is committed atomically (``bulk_requests_use_transaction = 1``) and answered
  ``200 {"status":"success","tracked":N,"invalid":M,"invalid_indices":[...]}``.

Reporting API -- ``GET`` or ``POST`` (form) on ``/index.php`` or ``/`` with ``module=API``,
``format=json`` and ``method=...``; every method except ``API.getMatomoVersion`` needs the token.
Errors are HTTP 200 ``{"result":"error","message":...}`` as in Matomo. Methods:

* ``API.getMatomoVersion`` -> ``{"value": "4.12.3"}``
* ``SitesManager.getSiteFromId`` (idSite), ``SitesManager.getSitesIdFromSiteUrl`` (url),
  ``SitesManager.getAllSites``; a site's ``excluded_ips`` / ``excluded_user_agents`` come from its
  entry in ``sites`` (comma-separated text, default empty), as Matomo stores them
* ``SitesManager.getExcludedIpsGlobal`` / ``SitesManager.getExcludedUserAgentsGlobal`` ->
  ``{"value": "<comma-separated list>"}`` (the ``excluded_ips_global`` / ``excluded_user_agents_global``
  options), ``{"value": false}`` when the option is empty (never set, as on a fresh Matomo 4.12.3);
  like Matomo they need an admin token, so a ``superuser=False`` token gets the error
  answer "You can't access this resource as it requires 'admin' access."
* ``SitesManager.getExcludedQueryParametersGlobal`` (any token; the ``excluded_parameters_global``
  option, ``false`` when empty) and ``SitesManager.getSearchKeywordParametersGlobal`` (admin; the
  ``search_keyword_parameters_global`` option, Matomo's default list when never set). A site's
  ``sitesearch``, ``sitesearch_keyword_parameters`` and ``excluded_parameters`` come from its entry
  in ``sites`` and shape the actions :meth:`FakeMatomo.write_log_tables` stores.
* ``Live.getLastVisitsDetails`` (idSite, period, date, segment, minTimestamp, filter_limit
  default 10 as in ``plugins/Live/API.php``, below 1 = all, filter_offset, filter_sort_order
  desc|asc). Visits are rebuilt from the stored hits of the site: same (normalised ``cip``,
  ``ua``), or the same ``uid`` whatever the IP, a new visit after 30 minutes of inactivity or when
  the UTC day changes (Matomo's ``create_new_visit_after_midnight``; sites are taken as UTC
  whatever their ``timezone``, so an action's ``timestamp`` is never shifted by the site's UTC
  offset as Matomo's is). A visit belongs to the period holding its *last* action (Matomo filters
  on ``visit_last_action_time``); ``minTimestamp`` keeps visits whose last action is later than
  it. Hits are placed by ``cdt``, not by arrival order. ``segment`` follows Matomo's grammar:
  conditions joined by ``,`` (OR) and ``;`` (AND), OR binding tighter (``a;b,c`` = a AND (b OR
  c)), ``\\,``/``\\;`` escaped, values URL-encoded, the whole segment may be encoded once more.
  Fields: ``visitIp`` (the stored, possibly anonymised IP), ``userId``, and the action fields
  ``actionServerHour`` / ``actionServerMinute`` (UTC hour / minute of an action's time); action
  conditions must hold on one action, as Matomo's single join of ``log_link_visit_action``.
  Operators ``==`` and ``!=``; anything else is an error answer. ``idVisit`` is positional:
  stable only while no hit with an earlier ``cdt`` arrives. ``visitIp`` is the IP the visit
  started from. ``actionDetails`` entries carry ``type`` (action, download, outlink, event),
  ``url``, ``idpageview`` (the request's ``pv_id`` or null), ``timestamp``,
  ``serverTimePretty``, ``pageTitle``, ``pageId``.
* ``VisitsSummary.get`` / ``Actions.get`` (period day|week|month|year|range, date D or A,B; a
  comma range with a non-range period answers ``{date: {...}}`` per day/period like Matomo).
  Computed live from the stored hits with the visit rules above -- a real Matomo shows them only
  after archiving. Approximations: nb_actions counts every action; nb_uniq_pageviews counts
  distinct (visit, url); no segment; no periods in the site's own timezone.
* ``CoreAdminHome.invalidateArchivedReports`` (idSites, dates, period, segment, cascadeDown) ->
  ``{"result":"success","message":...}``, recorded in ``fake.invalidations``.

Options of ``FakeMatomo(...)`` besides token, sites, host, port, superuser, version and archiving
(each is also an attribute of the same name that a test may change while the fake runs):

* ``anonymize_ip_bytes=0`` -- Privacy > Anonymize IP with ``ip_address_mask_length`` 1-4: hits
  committed from then on have their visit IP masked as Matomo does
  (``vendor/matomo/network/src/IPv4.php``/``IPv6.php``: IPv4 and IPv4-mapped IPv6 lose their last
  N bytes; other IPv6 keep 64/48/32/0 bits for N = 1/2/3/4), so ``visitIp`` in Live answers is
  masked and a ``visitIp==<full ip>`` segment finds nothing. Visitor recognition still uses the
  full IP (Matomo anonymises in ``afterRequestProcessed``, after computing the config id).
  ``anonymize_ip(ip, n)`` is the rule as a function.
* ``live_enabled=True`` -- False: the plugin Live is deactivated; every ``Live.*`` call answers
  ``{"result":"error","message":"The plugin Live is not enabled. You can activate the plugin on
  Settings &gt; Plugins page in Matomo."}`` (checked before method, token and site, as Matomo).
* ``visits_log=True`` -- ``"site"`` (or False) / ``"global"``: the visits log is deactivated in
  the website's / the general settings; ``Live.getLastVisitsDetails`` answers Matomo's "Visits
  log is deactivated ..." error.
* ``commit_delay=0.0`` -- every bulk POST that would store hits waits this long after reading its
  body, then commits whether or not the client is still there (a slow server, for crash tests);
  see ``commit_late``.
* ``bot_ip_ranges=False`` -- True: Matomo's built-in bot IP ranges (``core/Tracker/VisitExcluded.php``
  ``getBotIpRanges`` of 4.12.3: Google, Live/Bing/MSN, Yahoo, one IP) exclude a request whose ``cip``
  is in them unless it carries ``bots=1`` (``isNonHumanBot``; DeviceDetector's agent list is not
  modelled). Off by default so generated logs are stored whole.
* ``bot_user_agents=()`` -- case-insensitive substrings standing in for DeviceDetector's bot list
  (``isNonHumanBot``'s ``$deviceDetector->isBot()``): a request whose ``ua`` contains one is
  excluded unless it carries ``bots=1``. The real list is Matomo's; a test names the agents it needs.

Visit exclusion (``VisitExcluded::isExcluded``, in Matomo's order: ``bot_user_agents`` and the
bot IP ranges when ``bot_ip_ranges``, then the site's plus the global excluded IPs -- an IP,
``a.b.c.d/n`` or ``a.b.*.*`` -- then the global plus the site's excluded user agents: a
case-insensitive substring, or a ``/regex/flags`` entry whose answer is final, as in Matomo's
loop). An excluded request is valid, counts in the answer's ``tracked`` (core/Tracker.php: "an
excluded visit is considered 'successfully logged'") and is not stored; ``fake.excluded`` lists ``{"idsite", "cip", "ua", "reason"}`` with
reason ``bot_user_agent``, ``bot_ip_range``, ``excluded_ip`` or ``excluded_user_agent``.

Archive model (opt-in) -- ``FakeMatomo(..., archiving=True)``: ``VisitsSummary.get`` and
``Actions.get`` answer from archived snapshots, as a Matomo with browser-triggered archiving
disabled does, instead of live from the hits:

* A snapshot is the set of visits of one (site, period) -- period = day, week (Monday start),
  month or year -- frozen when it was last archived. A period never archived answers ``[]``, and
  so does an archived period without visits (Matomo's empty DataTable); a comma range answers
  ``{date: []}`` entries. ``period=range`` is built on request from the archived days in it.
* ``CoreAdminHome.invalidateArchivedReports`` marks periods invalidated: without ``period`` the
  day, week, month and year holding each date (Matomo's default); with ``period`` only that one
  (``cascadeDown=1`` adds the shorter periods inside it). An invalidated snapshot is still served
  (stale) until it is re-archived.
* Archiving -- ``fake.archive(idsite, first, last)`` in-process, or ``POST`` (or ``GET``)
  ``/fake/archive?idsite=1&from=YYYY-MM-DD&to=YYYY-MM-DD`` (form body accepted too; no token, as
  ``console core:archive`` needs none) -> ``200 {"status":"success", ...the run record}``, or
  ``400 {"status":"error","message":...}`` for bad parameters, ``409`` when ``archiving=False``.
  Like ``core:archive --force-date-range``, it (re)computes every day in the range and every
  week/month/year holding one of them that is *never archived or invalidated*; a valid snapshot
  is kept even when hits arrived since (every day counts as "in the past"; Matomo's automatic
  invalidation of backdated tracking requests is NOT modelled, so a test shows that the caller
  invalidates explicitly). ``fake.archive_runs``: one record per run (idsite, from, to,
  recomputed and kept period labels such as ``"day 2024-03-14"``, failed_silently).
* Fault: ``fake.archive_fails = True`` -- a silent archiver failure: runs are answered and
  recorded as successes but recompute nothing (the record's ``recomputed`` is empty and
  ``failed_silently`` true). ``reset()`` clears snapshots, runs and this flag.
* ``fake.archive_status(idsite)`` -> ``{"day 2024-03-14": "valid" | "invalidated", ...}``.

Faults -- ``fake.inject(kind, on_post=k | None, times=1, target="bulk", **params)``: ``on_post`` is
the 1-based number of the bulk POST it hits (counted from start or the last ``reset()``,
``times`` consecutive ones from there); ``None`` means the next ``times`` POSTs. ``for_seconds``
(any kind) makes it a time window opened by the first POST it hits, ``times`` is then ignored.
The first matching fault, in injection order, wins. ``target="api"`` applies it to Reporting
API calls instead (counted separately; ``skip_some`` is bulk-only). Kinds and parameters:

====================== ==========================================================================
``500_before_commit``  nothing stored; 500 with ``body="json"`` (Matomo's error JSON, ``tracked``
                       param, default 0) or ``body="html"``
``500_after_commit``   the batch IS stored, then 500 (``tracked`` default: the stored count)
``timeout_before_commit`` wait ``seconds`` (default 5), close without answer; nothing stored
``timeout_after_commit``  store, wait ``seconds``, close without answer
``reset``              RST (SO_LINGER 0) right after the request head, body unread; nothing stored
``html_200``           200 with an HTML page (``body="gif"`` for QueuedTracking's GIF); nothing
                       stored
``maintenance_503``    503 with ``Retry-After: <retry_after>`` (default 1) and an HTML page
``skip_some``          store all but ``positions`` (0-based) and answer success with tracked = the
                       stored count; skipped ones are not reported invalid (MySQL 1205 skips)
``slow``               wait ``seconds`` (default 1), then behave normally
``commit_late``        read the whole body, wait ``seconds`` (default 2) -- the client may time out
                       or be killed meanwhile -- then commit the batch anyway, as PHP keeps running
                       after the client gave up; answer success if the client is still connected,
                       else close (``bulk_log`` status ``"client_gone"``). Bulk-only.
====================== ==========================================================================

``fake.inject_fn(fn)``: ``fn(post_number, requests_or_None)`` is called for every bulk POST no
injected fault matched, after the body is read; it returns ``None`` (normal), a kind, or
``(kind, {params})``.

Introspection: ``hits(idsite=None)`` (copies, in arrival order, with ``_order`` 0-based global
arrival number and ``_post`` the POST number), ``pv_ids(idsite=None)``, ``duplicates()``
(``{pv_id: count}`` for (idsite, pv_id, cdt) seen more than once), ``bulk_posts``, ``bulk_log``
(one dict per bulk POST: post, path, query, user_agent, content_type, fault, requests, status,
tracked, invalid; status is the HTTP status, ``"timeout"``, ``"reset"`` or ``"client_gone"``),
``bulk_in_flight`` (bulk POSTs being handled, e.g. waiting to commit late) and
``wait_bulk_idle(timeout=10.0) -> bool``, ``api_calls``, ``api_tokens_in_url``, ``connections`` (TCP connections accepted), ``requests_log``
((method, path, params) of Reporting API calls, token values replaced by ``"***"``),
``invalidations``, ``archive_runs``, ``archive_status(idsite)``, ``errors`` (handler exceptions, answered 500; a client hanging up is not an
error), ``faults`` / ``clear_faults()``, ``reset()``.

The server never prints: request logging is off (query strings may carry the token), and the
token is masked in everything it records.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import hashlib
import ipaddress
import json
import re
import select
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["FakeMatomo", "Fault", "FAULT_KINDS", "MATOMO_VERSION", "anonymize_ip"]

MATOMO_VERSION = "4.12.3"
VISIT_INACTIVITY_SECONDS = 1800
DEFAULT_FILTER_LIMIT = 10  # plugins/Live/API.php: Common::getRequestVar('filter_limit', 10, 'int')
BULK_PATHS = ("/matomo.php", "/piwik.php")
API_PATHS = ("/", "/index.php")
ARCHIVE_PATH = "/fake/archive"
ARCHIVE_PERIODS = ("day", "week", "month", "year")
MASK = "***"

# kind -> allowed parameters (besides for_seconds)
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "500_before_commit": ("body", "tracked"),
    "500_after_commit": ("body", "tracked"),
    "timeout_before_commit": ("seconds",),
    "timeout_after_commit": ("seconds",),
    "reset": (),
    "html_200": ("body",),
    "maintenance_503": ("retry_after",),
    "skip_some": ("positions",),
    "slow": ("seconds",),
    "commit_late": ("seconds",),
}
_API_KINDS = set(FAULT_KINDS) - {"skip_some", "commit_late"}
_BULK_ONLY = sorted(set(FAULT_KINDS) - _API_KINDS)
# Matomo 4.12.3's answers when Live cannot be used (core/Exception/PluginDeactivatedException.php,
# rendered by core/DataTable/Renderer.php::formatValueXml, which turns '>' into '&gt;';
# plugins/Live/Live.php::checkIsVisitorLogEnabled).
# SitesManager\API::DEFAULT_SEARCH_KEYWORD_PARAMETERS of Matomo 4.12.3
DEFAULT_SEARCH_KEYWORD_PARAMETERS = "q,query,s,search,searchword,k,keyword"
LIVE_DEACTIVATED = ("The plugin Live is not enabled. You can activate the plugin on Settings &gt; Plugins page "
                    "in Matomo.")
VISITS_LOG_OFF_SITE = ("Visits log is deactivated in website settings. A user with at least admin access can "
                       "enable this feature in the settings for this website (idSite={idsite}).")
VISITS_LOG_OFF_GLOBAL = ("Visits log is deactivated globally. A user with super user access can enable this "
                         "feature in the general settings.")
# IPv6 masks of vendor/matomo/network/src/IPv6.php::anonymize, by number of masked bytes
_IPV6_MASK_BITS = {0: 128, 1: 64, 2: 48, 3: 32, 4: 0}
SEGMENT_FIELDS = ("visitIp", "userId", "actionServerHour", "actionServerMinute")

_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_HTML_TRACKER = (
    "<!DOCTYPE html>\n<html><head><title>Matomo</title></head><body>"
    "This endpoint belongs to Matomo (fake). No bulk JSON answer here.</body></html>\n"
)
_HTML_500 = (
    "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head><body>"
    "<h1>Internal Server Error</h1><p>An error occurred (fake Matomo).</p></body></html>\n"
)
_HTML_503 = (
    "<!DOCTYPE html>\n<html><head><title>Matomo is under maintenance</title></head><body>"
    "<h1>Maintenance</h1><p>Matomo is being upgraded; please retry later.</p></body></html>\n"
)
_HTML_UI = (
    "<!DOCTYPE html>\n<html><head><title>Matomo</title></head><body>"
    "<p>Fake Matomo: only module=API is served.</p></body></html>\n"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Fault:
    """One injected fault. Created by :meth:`FakeMatomo.inject`; its ``applied`` counter says how
    many requests it hit."""

    def __init__(self, kind: str, on_post: int | None, times: int, target: str, params: dict) -> None:
        self.kind = kind
        self.on_post = on_post
        self.times = times
        self.target = target
        self.for_seconds = params.pop("for_seconds", None)
        self.params = params
        self.remaining = times
        self.started: float | None = None
        self.applied = 0

    def _matches(self, n: int, now: float) -> bool:
        """Called under the fake's lock for the n-th POST (or API call)."""
        if self.for_seconds is not None:
            if self.on_post is not None and n < self.on_post:
                return False
            if self.started is None:
                self.started = now
            elif now - self.started >= self.for_seconds:
                return False
            self.applied += 1
            return True
        if self.on_post is not None:
            hit = self.on_post <= n < self.on_post + self.times
        else:
            hit = self.remaining > 0
            if hit:
                self.remaining -= 1
        if hit:
            self.applied += 1
        return hit

    def __repr__(self) -> str:
        return (
            f"Fault({self.kind!r}, on_post={self.on_post}, times={self.times}, "
            f"target={self.target!r}, for_seconds={self.for_seconds}, params={self.params}, "
            f"applied={self.applied})"
        )


class _Stored:
    __slots__ = ("params", "order", "post", "ts", "ip", "idsite", "masked_ip")

    def __init__(self, params: dict, order: int, post: int, ts: int, ip: str, idsite: int,
                 masked_ip: str | None = None) -> None:
        self.params = params
        self.order = order
        self.post = post
        self.ts = ts
        self.ip = ip  # full (normalised) IP: visitor recognition uses it, as Matomo's config_id
        self.idsite = idsite
        self.masked_ip = ip if masked_ip is None else masked_ip  # what log_visit.location_ip gets


class _ApiError(Exception):
    pass


class _Visit:
    __slots__ = ("key", "ip", "location_ip", "hits", "first", "last", "day", "id")

    def __init__(self, key: tuple, hit: _Stored, location_ip: str | None = None) -> None:
        self.key = key
        self.ip = hit.ip  # the full IP the visit started from (visitor recognition uses it)
        # like Matomo's log_visit.location_ip: that IP, masked when IP anonymisation is on
        self.location_ip = hit.ip if location_ip is None else location_ip
        self.hits = [hit]
        self.first = self.last = hit.ts
        self.day = hit.ts // 86400
        self.id = 0


def _as_str(value: Any) -> str:
    # PHP's view of a JSON value used as a request parameter.
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _norm_ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text.strip()).compressed
    except ValueError:
        return text.strip()


def anonymize_ip(text: str, masked_bytes: int) -> str:
    """The IP as Matomo stores it with ``ip_address_mask_length = masked_bytes`` (0 = off).

    ``vendor/matomo/network/src/IPv4.php``: the last N bytes become 0. ``IPv6.php``: an
    IPv4-mapped (``::ffff:a.b.c.d``) or -compatible address loses its last N bytes too; any other
    IPv6 keeps its first 128/64/48/32/0 bits for N = 0/1/2/3/4.
    """
    n = max(0, min(4, int(masked_bytes)))
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return text.strip()
    if n == 0:
        return ip.compressed
    packed = ip.packed
    if ip.version == 4 or packed[:12] in (b"\0" * 10 + b"\xff\xff", b"\0" * 12):
        return ipaddress.ip_address(packed[:len(packed) - n] + b"\0" * n).compressed
    bits = _IPV6_MASK_BITS[n]
    mask = ((1 << bits) - 1) << (128 - bits) if bits else 0
    return ipaddress.IPv6Address(int(ip) & mask).compressed


def _parse_cdt(value: str | None) -> int | None:
    """Unix seconds for a Matomo ``cdt`` (naive means UTC); None when unparseable."""
    if value is None or value == "":
        return int(time.time())
    text = value.strip()
    try:
        return int(float(text))
    except ValueError:
        pass
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return int(parsed.timestamp())


def _day_str(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _pretty(ts: int) -> str:
    t = time.gmtime(ts)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def _parse_day(text: str) -> _dt.date:
    text = text.strip()
    today = _dt.datetime.now(_dt.timezone.utc).date()
    if text in ("today", "now"):
        return today
    if text == "yesterday":
        return today - _dt.timedelta(days=1)
    try:
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise _ApiError(f"Date format must be: YYYY-MM-DD, or 'today' or 'yesterday' or any keyword "
                        f"supported by the strtotime function. Date given: {text!r}") from None


def _period_bounds(period: str, day: _dt.date) -> tuple[_dt.date, _dt.date]:
    """[start, end] (inclusive days) of the Matomo period holding ``day``."""
    if period == "day":
        return day, day
    if period == "week":
        start = day - _dt.timedelta(days=day.weekday())
        return start, start + _dt.timedelta(days=6)
    if period == "month":
        last = calendar.monthrange(day.year, day.month)[1]
        return day.replace(day=1), day.replace(day=last)
    if period == "year":
        return day.replace(month=1, day=1), day.replace(month=12, day=31)
    raise _ApiError(f"The period '{period}' is not supported. Try any of the following instead: "
                    "day, week, month, year, range")


def _ts_of(day: _dt.date) -> int:
    return calendar.timegm(day.timetuple())


def _date_of(ts: int) -> _dt.date:
    return _dt.date(1970, 1, 1) + _dt.timedelta(days=ts // 86400)


def _days(first: _dt.date, last: _dt.date):
    cur = first
    while cur <= last:
        yield cur
        cur += _dt.timedelta(days=1)


def _covering(periods, first: _dt.date, last: _dt.date) -> list[tuple[str, _dt.date, _dt.date]]:
    """[(period, start, end)] of each of ``periods`` holding a day of [first, last], no repeats."""
    out: list[tuple[str, _dt.date, _dt.date]] = []
    for period in periods:
        for day in _days(first, last):
            start, end = _period_bounds(period, day)
            if not out or out[-1] != (period, start, end):
                out.append((period, start, end))
    return out


def _periods(period: str, date: str, *, single: bool) -> list[tuple[str, int, int]]:
    """[(label, start_ts, end_ts_exclusive)] for a period/date pair.

    ``single=True`` (Live) folds everything into one span; otherwise a comma range with a
    non-range period gives one entry per period, as Matomo's multi-period answers.
    """
    period = (period or "").strip().lower()
    date = (date or "").strip()
    if not period:
        raise _ApiError("Please specify a value for 'period'.")
    if not date:
        raise _ApiError("Please specify a value for 'date'.")
    if "," in date:
        a, b = (_parse_day(x) for x in date.split(",", 1))
        if b < a:
            raise _ApiError(f"The date range '{date}' is invalid: end before start.")
        if period == "range" or single:
            if period != "range":  # Live folds e.g. period=day&date=A,B into one span
                a = _period_bounds(period, a)[0]
                b = _period_bounds(period, b)[1]
            return [(date, _ts_of(a), _ts_of(b) + 86400)]
        out = []
        cur = a
        while cur <= b:
            start, end = _period_bounds(period, cur)
            label = str(start) if period == "day" else (
                f"{start.year}-{start.month:02d}" if period == "month" else
                str(start.year) if period == "year" else f"{start},{end}")
            out.append((label, _ts_of(start), _ts_of(end) + 86400))
            cur = end + _dt.timedelta(days=1)
        return out
    if period == "range":
        raise _ApiError("The date for period=range must be 'YYYY-MM-DD,YYYY-MM-DD'.")
    start, end = _period_bounds(period, _parse_day(date))
    return [(date, _ts_of(start), _ts_of(end) + 86400)]


_SEGMENT_OPERATORS = ("==", "!=", ">=", "<=", "=@", "!@", "=^", "=$", ">", "<")


def _split_segment(seg: str) -> list[tuple[str, str]]:
    """(operand, operator after it: ';', ',' or '') as core/Segment/SegmentExpression::parseTree
    cuts them; a backslash escapes ';' and ','."""
    leaves: list[tuple[str, str]] = []
    operand, escaped = "", False
    for char in seg:
        if char in ";," and escaped:
            operand = operand[:-1] + char
        elif char in ";,":
            leaves.append((operand, char))
            operand = ""
        else:
            operand += char
        escaped = char == "\\"
    leaves.append((operand, ""))
    return leaves


def _parse_segment(segment: str) -> list[list[tuple[str, str, str]]] | None:
    """A segment as an AND of OR-groups of ``(field, operator, value)`` (None = no segment).

    As in Matomo, ``,`` (OR) binds tighter than ``;`` (AND): ``a;b,c`` is ``a AND (b OR c)``
    (core/Segment/SegmentExpression::getSql). Values are URL-decoded; the whole segment may be
    encoded once more. Supported: ``visitIp``, ``userId``, ``actionServerHour``,
    ``actionServerMinute`` with ``==`` and ``!=``.
    """
    seg = (segment or "").strip()
    if not seg:
        return None
    if "==" not in seg and "!=" not in seg and ("%3D%3D" in seg.upper() or "%21%3D" in seg.upper()):
        seg = unquote(seg)  # the whole segment was encoded once more
    groups: list[list[tuple[str, str, str]]] = [[]]
    for operand, after in _split_segment(seg):
        text = unquote(operand)
        for i in range(len(text)):
            op = next((o for o in _SEGMENT_OPERATORS if text.startswith(o, i)), None)
            if op and i > 0:
                name, value = text[:i], unquote(text[i + len(op):])
                break
        else:
            raise _ApiError(f"The segment condition '{text}' is not valid.")
        if name not in SEGMENT_FIELDS or op not in ("==", "!="):
            raise _ApiError(f"The segment condition '{text}' is not supported by this fake Matomo "
                            f"(only {', '.join(SEGMENT_FIELDS)} with == or !=, combined with ',' and ';').")
        groups[-1].append((name, op, value))
        if after == ";":
            groups.append([])
    if not groups[-1]:
        raise _ApiError("The segment ends with ';': a condition is missing.")
    return groups


def _segment_matches(groups: list[list[tuple[str, str, str]]], visit: _Visit) -> bool:
    """Does a visit match? Action conditions hold on one action (one join of
    log_link_visit_action, grouped by visit), visit conditions on the visit."""
    uid = visit.key[1] if visit.key[0] == "uid" else ""
    for hit in visit.hits:
        t = time.gmtime(hit.ts)  # server_time is UTC
        fields = {"visitIp": visit.location_ip, "userId": uid, "actionServerHour": t.tm_hour,
                  "actionServerMinute": t.tm_min}
        if all(any(_condition(name, fields[name], op, value) for name, op, value in group)
               for group in groups):
            return True
    return False


def _condition(name: str, actual: Any, op: str, value: str) -> bool:
    if value == "":  # '==' is "IS NULL or empty", '!=' is "not null nor empty"
        return (actual in ("", None, 0)) == (op == "==")
    if isinstance(actual, int):  # HOUR()/MINUTE() against a string: MySQL compares numbers
        try:
            expected: Any = int(float(value))
        except ValueError:
            expected = 0
    elif name == "visitIp":  # VisitIp.php compares binary addresses
        expected = _norm_ip(value)
    else:
        expected = value
    return (actual == expected) == (op == "==")


# core/Tracker/VisitExcluded.php (4.12.3) getBotIpRanges(): Google, Live/Bing/MSN, Yahoo, one IP.
_BOT_NETWORKS = tuple(ipaddress.ip_network(r, strict=False) for r in (
    "216.239.32.0/19", "64.233.160.0/19", "66.249.80.0/20", "72.14.192.0/18", "209.85.128.0/17", "66.102.0.0/20",
    "74.125.0.0/16", "64.18.0.0/20", "207.126.144.0/20", "173.194.0.0/16", "64.4.0.0/18", "65.52.0.0/14",
    "157.54.0.0/15", "157.56.0.0/14", "157.60.0.0/16", "207.46.0.0/16", "207.68.128.0/18", "207.68.192.0/20",
    "131.253.26.0/20", "131.253.24.0/20", "72.30.198.0/20", "72.30.196.0/20", "98.137.207.0/20", "1.202.218.8",
))


def _ip_range(text: str):
    """An excluded-IPs entry (IP, CIDR or trailing ``*`` groups) as a network; None if Matomo ignores it."""
    text = text.strip()
    if not text:
        return None
    try:
        if "*" in text:
            head = text.rstrip("*.:")
            stars = text.count("*")
            if "*" in head:
                return None
            sep = ":" if ":" in text else "."
            groups = head.split(sep) + ["0"] * stars
            base = ipaddress.ip_address(sep.join(groups))
            return ipaddress.ip_network(f"{base}/{base.max_prefixlen - (8 if base.version == 4 else 16) * stars}",
                                        strict=False)
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _preg(entry: str):
    """``/pattern/flags`` (any non-alphanumeric delimiter) as a compiled regex, else None: what
    ``@preg_match($entry, null) !== false`` accepts, for the i/m/s/x flags."""
    if len(entry) < 3 or entry[0].isalnum() or entry[0] in "\\ ":
        return None
    end = entry.rfind(entry[0], 1)
    flags = entry[end + 1:] if end > 0 else None
    if flags is None or any(f not in "imsx" for f in flags):
        return None
    try:
        return re.compile(entry[1:end], sum({"i": re.I, "m": re.M, "s": re.S, "x": re.X}[f] for f in flags))
    except re.error:
        return None


def _action_type(params: dict) -> str:
    if params.get("download"):
        return "download"
    if params.get("link"):
        return "outlink"
    if params.get("e_c") or params.get("e_a"):
        return "event"
    return "action"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    fake: "FakeMatomo"

    def handle_error(self, request, client_address) -> None:  # socketserver hook
        # Never print (the default prints a traceback to stderr). Hang-ups are not errors.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # ConnectionError, TimeoutError, a socket closed by a fault
            return
        self.fake._record_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK stall every answer by ~40 ms (real servers cork or writev).
    disable_nagle_algorithm = True
    server_version = "Apache"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection is dropped after this
    server: _Server

    # --- plumbing ------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self._sent = False
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass  # never print: query strings may carry the token

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        self._sent = False
        fake = self.server.fake
        try:
            split = urlsplit(self.path)
            if split.path in BULK_PATHS:
                if method == "POST":
                    fake._handle_bulk(self, split.path, split.query)
                else:
                    self.read_body()
                    self.send(200, _HTML_TRACKER, "text/html; charset=utf-8")
            elif split.path in API_PATHS:
                fake._handle_api(self, method, split.path, split.query)
            elif split.path == ARCHIVE_PATH:
                fake._handle_archive(self, split.query)
            else:
                self.read_body()
                self.send(404, "<html><body><h1>404 Not Found</h1></body></html>\n", "text/html")
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away; not the server's fault
        except Exception:  # noqa: BLE001 - answer 500 and record, never crash
            fake._record_error(traceback.format_exc())
            self.close_connection = True
            if not self._sent:
                try:
                    self.send(500, json.dumps({"result": "error", "message": "fake Matomo bug"}),
                              "application/json")
                except OSError:
                    pass

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    raise ConnectionResetError("client hung up inside a chunked body")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return b""
        data = self.rfile.read(length)
        if len(data) < length:
            raise ConnectionResetError("client hung up inside the body")
        return data

    def send(self, status: int, body: bytes | str, ctype: str, headers: dict | None = None) -> None:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._sent = True
        self.wfile.write(body)

    def send_json(self, status: int, obj: Any, headers: dict | None = None) -> None:
        self.send(status, json.dumps(obj), "application/json; charset=utf-8", headers)

    def reset(self) -> None:
        """Close with RST: SO_LINGER 0, then close before anything is answered."""
        self.close_connection = True
        self._sent = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # drops the makefile reference so close() is the real close
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def hang_up(self) -> None:
        """Close without an answer (FIN)."""
        self.close_connection = True
        self._sent = True

    def client_gone(self) -> bool:
        """Has the client closed its end (timed out, killed)? A peek, nothing is consumed."""
        try:
            readable, _w, _x = select.select([self.connection], [], [], 0)
            if not readable:
                return False  # open, nothing sent: the client still waits
            data = self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True  # reset, or closed by fake.close()
        return data == b""


# Matomo 4.12.3's raw log tables, the columns the pretable reads, with Matomo's types (for
# FakeMatomo.write_log_tables; the prefix matomo_ is replaced by the one asked for).
MATOMO_LOG_TABLES = (
    "CREATE TABLE IF NOT EXISTS matomo_log_visit (idvisit BIGINT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
    "idsite INT(10) UNSIGNED NOT NULL, location_ip VARBINARY(16) NOT NULL, config_browser_name VARCHAR(40) NULL, "
    "config_browser_version VARCHAR(20) NULL, location_latitude DECIMAL(9,6) NULL, "
    "location_longitude DECIMAL(9,6) NULL)",
    "CREATE TABLE IF NOT EXISTS matomo_log_action (idaction INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
    "name VARCHAR(4096), hash INT(10) UNSIGNED NOT NULL, type TINYINT(3) UNSIGNED NULL, url_prefix TINYINT(2) NULL, "
    "INDEX index_type_hash (type, hash))",
    "CREATE TABLE IF NOT EXISTS matomo_log_link_visit_action (idlink_va BIGINT(10) UNSIGNED AUTO_INCREMENT "
    "PRIMARY KEY, idsite INT(10) UNSIGNED NOT NULL, idvisit BIGINT(10) UNSIGNED NOT NULL, "
    "idaction_name INT(10) UNSIGNED NULL, idaction_url INT(10) UNSIGNED NULL, idpageview CHAR(6) NULL, "
    "server_time DATETIME NOT NULL, idaction_event_category INT(10) UNSIGNED NULL, "
    "idaction_content_interaction INT(10) UNSIGNED NULL, search_cat VARCHAR(200) NULL, "
    "INDEX index_idsite_servertime (idsite, server_time))",
)


class FakeMatomo:
    """The fake server. Starts listening on construction; use as a context manager or call
    :meth:`close`. See the module docstring for the protocol."""

    def __init__(
        self,
        token: str = "t0ken",
        sites: dict | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        superuser: bool = True,
        version: str = MATOMO_VERSION,
        archiving: bool = False,
        anonymize_ip_bytes: int = 0,
        live_enabled: bool = True,
        visits_log: bool | str = True,
        commit_delay: float = 0.0,
        bot_ip_ranges: bool = False,
        bot_user_agents: tuple = (),
        excluded_ips_global: str = "",
        excluded_user_agents_global: str = "",
        excluded_parameters_global: str = "",
        search_keyword_parameters_global: str | None = None,
    ) -> None:
        if sites is None:
            sites = {1: {"name": "Demo", "main_url": "https://example.org", "timezone": "UTC"}}
        if anonymize_ip_bytes not in (0, 1, 2, 3, 4):
            raise ValueError("anonymize_ip_bytes is Matomo's ip_address_mask_length: 0 (off) or 1-4")
        if visits_log not in (True, False, "site", "global"):
            raise ValueError("visits_log is True, or 'site'/'global' (False = 'site') for a deactivated log")
        self.token = token
        self.superuser = superuser
        self.version = version
        # Privacy > Anonymize IP: bytes masked in the stored visit IP (attributes: may change live,
        # as in Matomo, where the setting applies to visits tracked from then on).
        self.anonymize_ip_bytes = int(anonymize_ip_bytes)
        self.live_enabled = live_enabled  # False: the plugin Live is deactivated
        self.visits_log = visits_log  # False / "site" / "global": the visits log is deactivated
        self.commit_delay = float(commit_delay)  # seconds every bulk POST waits before its commit
        # Visit exclusion (see the module docstring): the built-in bot ranges are opt-in.
        self.bot_ip_ranges = bot_ip_ranges
        self.bot_user_agents = tuple(bot_user_agents)
        self.excluded_ips_global = excluded_ips_global
        self.excluded_user_agents_global = excluded_user_agents_global
        # Websites > Settings: global excluded query parameters and site search keyword parameters
        # (None: never set, Matomo answers its default list).
        self.excluded_parameters_global = excluded_parameters_global
        self.search_keyword_parameters_global = search_keyword_parameters_global
        # Opt-in: reports come from archived snapshots instead of live (see the module docstring).
        self.archiving = archiving
        self.sites: dict[int, dict] = {int(k): dict(v) for k, v in sites.items()}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._conns: set = set()
        self._fn: Callable | None = None
        self._bulk_in_flight = 0  # not reset by reset(): those POSTs are still running
        self._init_state()
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"FakeMatomo:{self.port}", daemon=True,
        )
        self._thread.start()
        self._closed = False

    def _init_state(self) -> None:
        self._hits: list[_Stored] = []
        self._order = 0
        self._bulk_posts = 0
        self._api_calls = 0
        self._accepted = 0
        self._faults: list[Fault] = []
        self.bulk_log: list[dict] = []
        self.requests_log: list[tuple[str, str, dict]] = []
        self.api_tokens_in_url = 0  # Reporting API calls whose URL carried token_auth
        self.invalidations: list[dict] = []
        self.errors: list[str] = []
        # Archive model: (idsite, period, first day ISO) -> visits frozen at archiving time.
        self._archives: dict[tuple[int, str, str], list[_Visit]] = {}
        self._invalid: set[tuple[int, str, str]] = set()
        self.archive_runs: list[dict] = []
        self.archive_fails = False
        self.excluded: list[dict] = []  # requests answered as tracked but excluded (visit exclusion)

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> "FakeMatomo":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop promptly: wakes sleeping faults, stops accepting, drops open connections."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget hits, counters, faults and logs (sites, token and inject_fn stay)."""
        with self._lock:
            self._init_state()

    # --- fault injection -------------------------------------------------------------------------------
    def inject(self, kind: str, on_post: int | None = None, times: int = 1, *, target: str = "bulk",
               **params: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        if target not in ("bulk", "api"):
            raise ValueError("target must be 'bulk' or 'api'")
        if target == "api" and kind not in _API_KINDS:
            raise ValueError(f"{kind!r} applies to bulk POSTs only")
        unknown = set(params) - set(FAULT_KINDS[kind]) - {"for_seconds"}
        if unknown:
            raise TypeError(f"{kind!r} takes no parameter(s) {sorted(unknown)}; "
                            f"it takes {list(FAULT_KINDS[kind]) + ['for_seconds']}")
        if on_post is not None and on_post < 1:
            raise ValueError("on_post is 1-based")
        if times < 1:
            raise ValueError("times must be >= 1")
        if kind == "skip_some":
            params["positions"] = {int(p) for p in params.get("positions", ())}
        fault = Fault(kind, on_post, times, target, dict(params))
        with self._lock:
            self._faults.append(fault)
        return fault

    def inject_fn(self, fn: Callable[[int, list | None], Any] | None) -> None:
        """Custom fault logic for bulk POSTs (None removes it). See the module docstring."""
        with self._lock:
            self._fn = fn

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._fn = None

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _pick_fault(self, target: str, n: int) -> Fault | None:
        now = time.monotonic()
        for fault in self._faults:
            if fault.target == target and fault._matches(n, now):
                return fault
        return None

    # --- introspection ---------------------------------------------------------------------------
    @property
    def bulk_posts(self) -> int:
        with self._lock:
            return self._bulk_posts

    @property
    def connections(self) -> int:
        """TCP connections accepted (keep-alive clients reuse them)."""
        with self._lock:
            return self._accepted

    @property
    def api_calls(self) -> int:
        with self._lock:
            return self._api_calls

    @property
    def bulk_in_flight(self) -> int:
        """Bulk POSTs being handled right now (e.g. waiting in ``commit_late``)."""
        with self._lock:
            return self._bulk_in_flight

    def wait_bulk_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no bulk POST is being handled (late commits done); False on timeout."""
        deadline = time.monotonic() + timeout
        while self.bulk_in_flight:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def hits(self, idsite: int | None = None) -> list[dict]:
        with self._lock:
            rows = [h for h in self._hits if idsite is None or h.idsite == int(idsite)]
            return [dict(h.params, _order=h.order, _post=h.post) for h in rows]

    def pv_ids(self, idsite: int | None = None) -> list[str]:
        with self._lock:
            return [h.params["pv_id"] for h in self._hits
                    if "pv_id" in h.params and (idsite is None or h.idsite == int(idsite))]

    def duplicates(self) -> dict[str, int]:
        with self._lock:
            counts = Counter((h.idsite, h.params["pv_id"], h.params.get("cdt", ""))
                             for h in self._hits if "pv_id" in h.params)
        return {key[1]: n for key, n in counts.items() if n > 1}

    # --- internals -------------------------------------------------------------------------------
    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
                self._accepted += 1
            else:
                self._conns.discard(conn)

    def _record_error(self, text: str) -> None:
        if self.token:
            text = text.replace(self.token, MASK)
        with self._lock:
            self.errors.append(text)

    def _mask(self, params: dict) -> dict:
        return {k: (MASK if k == "token_auth" or (self.token and v == self.token) else v)
                for k, v in params.items()}

    def _wait(self, seconds: float) -> None:
        self._stop.wait(max(0.0, float(seconds)))

    # --- bulk tracking ---------------------------------------------------------------------------
    def _handle_bulk(self, h: _Handler, path: str, query: str) -> None:
        with self._lock:
            self._bulk_in_flight += 1
        try:
            self._handle_bulk_post(h, path, query)
        finally:
            with self._lock:
                self._bulk_in_flight -= 1

    def _handle_bulk_post(self, h: _Handler, path: str, query: str) -> None:
        with self._lock:
            self._bulk_posts += 1
            n = self._bulk_posts
            fault = self._pick_fault("bulk", n)
            fn = self._fn
            entry: dict[str, Any] = {
                "post": n, "path": path,
                "query": self._mask(dict(parse_qsl(query, keep_blank_values=True))),
                "user_agent": h.headers.get("User-Agent", ""),
                "content_type": h.headers.get("Content-Type", ""),
                "fault": fault.kind if fault else None,
                "requests": None, "status": None, "tracked": 0, "invalid": 0,
            }
            self.bulk_log.append(entry)
        kind, params = (fault.kind, fault.params) if fault else (None, {})

        if kind == "reset":
            entry["status"] = "reset"
            h.reset()
            return

        body = h.read_body()
        data, problem = self._parse_bulk_body(body)
        requests_list = data.get("requests") if data is not None and problem is None else None
        if requests_list is not None:
            entry["requests"] = len(requests_list)

        if kind is None and fn is not None:
            decided = fn(n, requests_list)
            if decided:
                if isinstance(decided, str):
                    kind, params = decided, {}
                else:
                    kind, params = decided[0], dict(decided[1])
                if kind not in FAULT_KINDS:
                    raise ValueError(f"inject_fn returned unknown kind {kind!r}")
                if kind == "skip_some":
                    params["positions"] = {int(p) for p in params.get("positions", ())}
                entry["fault"] = kind
                if kind == "reset":
                    entry["status"] = "reset"
                    h.reset()
                    return

        if kind == "slow":
            self._wait(params.get("seconds", 1))
        elif kind == "500_before_commit":
            entry["status"] = 500
            self._send_500(h, params, tracked=0)
            return
        elif kind == "timeout_before_commit":
            entry["status"] = "timeout"
            self._wait(params.get("seconds", 5))
            h.hang_up()
            return
        elif kind == "html_200":
            entry["status"] = 200
            if params.get("body") == "gif":
                h.send(200, _GIF, "image/gif")
            else:
                h.send(200, params.get("body") or _HTML_TRACKER, "text/html; charset=utf-8")
            return
        elif kind == "maintenance_503":
            entry["status"] = 503
            h.send(503, _HTML_503, "text/html; charset=utf-8",
                   {"Retry-After": params.get("retry_after", 1)})
            return

        if problem is not None:
            entry["status"] = 400
            h.send_json(400, {"status": "error", "tracked": 0, "invalid": 0, "message": problem})
            return

        # A PHP request keeps running after its client gave up (or was killed): wait, then commit.
        delay = params.get("seconds", 2) if kind == "commit_late" else self.commit_delay
        if delay:
            self._wait(delay)
        skip = params.get("positions", set()) if kind == "skip_some" else set()
        tracked, invalid = self._commit(n, requests_list, skip)
        entry["tracked"], entry["invalid"] = tracked, len(invalid)
        if delay and kind in (None, "commit_late", "slow", "skip_some") and h.client_gone():
            entry["status"] = "client_gone"  # committed; nobody is left to hear the answer
            h.hang_up()
            return

        if kind == "500_after_commit":
            entry["status"] = 500
            self._send_500(h, params, tracked=tracked, invalid=invalid)
            return
        if kind == "timeout_after_commit":
            entry["status"] = "timeout"
            self._wait(params.get("seconds", 5))
            h.hang_up()
            return
        result: dict[str, Any] = {"status": "success", "tracked": tracked, "invalid": len(invalid)}
        if self.superuser:
            result["invalid_indices"] = invalid
        entry["status"] = 200
        h.send_json(200, result)

    def _send_500(self, h: _Handler, params: dict, tracked: int, invalid: list | None = None) -> None:
        if params.get("body") == "html":
            h.send(500, _HTML_500, "text/html; charset=utf-8")
            return
        invalid = invalid or []
        result: dict[str, Any] = {"status": "error", "tracked": int(params.get("tracked", tracked)),
                                  "invalid": len(invalid)}
        if self.superuser:
            result["invalid_indices"] = invalid
        h.send_json(500, result)

    def _parse_bulk_body(self, body: bytes) -> tuple[dict | None, str | None]:
        try:
            data = json.loads(body.decode("utf-8").strip())
        except (UnicodeDecodeError, ValueError):
            return None, "The bulk request body is not valid JSON."
        if not isinstance(data, dict) or not isinstance(data.get("requests"), list):
            return None, "The bulk request body has no 'requests' list."
        token = data.get("token_auth")
        if not token:
            return data, ("token_auth must be specified when using Bulk Tracking Import. "
                          "See the Tracking API documentation.")
        if token != self.token:
            return data, "token_auth specified does not have Admin permission for idsite=1"
        return data, None

    def _commit(self, post: int, requests_list: list, skip: set) -> tuple[int, list[int]]:
        batch: list[tuple[dict, int, str, int]] = []
        invalid: list[int] = []
        index = -1
        for item in requests_list:
            if isinstance(item, str):
                query = urlsplit(item).query
                if not query:
                    continue  # Matomo drops a string request without a query part
                params = {k: v for k, v in parse_qsl(query, keep_blank_values=True)}
            elif isinstance(item, dict):
                params = {str(k): _as_str(v) for k, v in item.items()}
            else:
                params = None
            index += 1
            checked = self._validate(params) if params is not None else None
            if checked is None:
                invalid.append(index)
                continue
            if index in skip:
                continue
            idsite, ts = checked
            batch.append((params, idsite, _norm_ip(params.get("cip", "127.0.0.1")), ts))
        masked = self.anonymize_ip_bytes
        with self._lock:  # one transaction
            rules: dict[int, tuple] = {}
            for params, idsite, ip, ts in batch:
                if idsite not in rules:
                    rules[idsite] = self._exclusion_rules(idsite)
                reason = self._excluded_reason(params, ip, *rules[idsite]) if rules[idsite] else None
                if reason is not None:
                    self.excluded.append({"idsite": idsite, "cip": ip, "ua": params.get("ua", ""), "reason": reason})
                    continue
                self._hits.append(_Stored(params, self._order, post, ts, ip, idsite,
                                          anonymize_ip(ip, masked) if masked else ip))
                self._order += 1
        return len(batch), invalid

    def _exclusion_rules(self, idsite: int) -> tuple:
        """(bot ranges on, excluded IP networks, excluded user agents) of a site, or () when none."""
        site = self._site_dict(idsite)
        ranges = [r for r in (_ip_range(t) for t in f"{site['excluded_ips']},{self.excluded_ips_global}".split(","))
                  if r is not None]
        entries = [e.strip() for e in f"{self.excluded_user_agents_global},{site['excluded_user_agents']}".split(",")]
        agents = list(dict.fromkeys(e for e in entries if e))
        bots = self.bot_user_agents
        return (self.bot_ip_ranges, bots, ranges, agents) if self.bot_ip_ranges or bots or ranges or agents else ()

    @staticmethod
    def _excluded_reason(params: dict, ip: str, bot_ranges: bool, bot_agents: tuple, ranges: list,
                         agents: list) -> str | None:
        """Matomo's VisitExcluded::isExcluded for the parts the fake models (module docstring)."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            address = None
        agent = params.get("ua", "")
        if bot_agents and not params.get("bots") and any(b.lower() in agent.lower() for b in bot_agents):
            return "bot_user_agent"
        if bot_ranges and not params.get("bots") and address is not None:
            if any(address in net for net in _BOT_NETWORKS if net.version == address.version):
                return "bot_ip_range"
        if address is not None and any(address in r for r in ranges if r.version == address.version):
            return "excluded_ip"
        for entry in agents:
            if entry.lower() in agent.lower():
                return "excluded_user_agent"
            regex = _preg(entry)
            if regex is not None:
                return "excluded_user_agent" if regex.search(agent) else None
        return None

    def _validate(self, params: dict) -> tuple[int, int] | None:
        try:
            idsite = int(params.get("idsite", ""))
        except ValueError:
            return None
        if idsite not in self.sites or params.get("rec") != "1":
            return None
        if not (params.get("url") or params.get("download") or params.get("link")):
            return None
        ts = _parse_cdt(params.get("cdt"))
        if ts is None:
            return None
        return idsite, ts

    # --- Reporting API ---------------------------------------------------------------------------
    def _handle_api(self, h: _Handler, method: str, path: str, query: str) -> None:
        params = dict(parse_qsl(query, keep_blank_values=True))
        body = h.read_body()
        if "token_auth" in params:
            with self._lock:
                self.api_tokens_in_url += 1  # a proxy or access log would have recorded it
        if method == "POST" and body:
            ctype = (h.headers.get("Content-Type") or "").lower()
            if "json" not in ctype and "multipart" not in ctype:
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._lock:
            self._api_calls += 1
            n = self._api_calls
            self.requests_log.append((method, path, self._mask(params)))
            fault = self._pick_fault("api", n)
        if fault is not None:
            kind, fp = fault.kind, fault.params
            if kind == "reset":
                h.reset()
                return
            if kind == "slow":
                self._wait(fp.get("seconds", 1))
            elif kind in ("500_before_commit", "500_after_commit"):
                if fp.get("body") == "html":
                    h.send(500, _HTML_500, "text/html; charset=utf-8")
                else:
                    h.send_json(500, {"result": "error", "message": "Internal Server Error (fault)"})
                return
            elif kind in ("timeout_before_commit", "timeout_after_commit"):
                self._wait(fp.get("seconds", 5))
                h.hang_up()
                return
            elif kind == "html_200":
                h.send(200, fp.get("body") if fp.get("body") not in (None, "gif") else _HTML_UI,
                       "text/html; charset=utf-8")
                return
            elif kind == "maintenance_503":
                h.send(503, _HTML_503, "text/html; charset=utf-8",
                       {"Retry-After": fp.get("retry_after", 1)})
                return

        if params.get("module") != "API":
            h.send(200, _HTML_UI, "text/html; charset=utf-8")
            return
        if (params.get("format") or "xml").lower() != "json":
            h.send(200, '<?xml version="1.0" encoding="utf-8" ?>\n<result>'
                        '<error message="This fake Matomo renders format=json only" /></result>\n',
                   "text/xml; charset=utf-8")
            return
        try:
            result = self._api(params)
        except _ApiError as exc:
            result = {"result": "error", "message": str(exc)}
        h.send_json(200, result)

    _METHODS = (
        "API.getMatomoVersion", "API.getPiwikVersion", "SitesManager.getSiteFromId",
        "SitesManager.getSitesIdFromSiteUrl", "SitesManager.getAllSites", "Live.getLastVisitsDetails",
        "VisitsSummary.get", "Actions.get", "CoreAdminHome.invalidateArchivedReports",
        "SitesManager.getExcludedIpsGlobal", "SitesManager.getExcludedUserAgentsGlobal",
        "SitesManager.getExcludedQueryParametersGlobal", "SitesManager.getSearchKeywordParametersGlobal",
    )

    def _api(self, p: dict) -> Any:
        name = p.get("method", "")
        if name.partition(".")[0] == "Live" and not self.live_enabled:
            # core/API/Request.php checks the plugin before the method, the token and the site
            raise _ApiError(LIVE_DEACTIVATED)
        if name not in self._METHODS:
            module, _, meth = name.partition(".")
            raise _ApiError(f"The method '{meth or name}' does not exist or is not available in the "
                            f"module '{module}'.")
        if name in ("API.getMatomoVersion", "API.getPiwikVersion"):
            return {"value": self.version}
        if p.get("token_auth") != self.token:
            raw = p.get("idSite") or p.get("idSites") or "1"
            first = raw.split(",")[0] if raw != "all" else "1"
            raise _ApiError(f"You can't access this resource as it requires 'view' access for the "
                            f"website id = {first}.")
        if name == "SitesManager.getSiteFromId":
            return self._site_dict(self._site_id(p.get("idSite")))
        if name == "SitesManager.getSitesIdFromSiteUrl":
            want = (urlsplit(p.get("url", "")).hostname or p.get("url", "")).lower()
            want = want[4:] if want.startswith("www.") else want
            out = []
            for idsite, site in sorted(self.sites.items()):
                hostname = (urlsplit(site.get("main_url", "")).hostname or "").lower()
                hostname = hostname[4:] if hostname.startswith("www.") else hostname
                if want and hostname == want:
                    out.append({"idsite": str(idsite)})
            return out
        if name == "SitesManager.getAllSites":
            return {str(i): self._site_dict(i) for i in sorted(self.sites)}
        if name in ("SitesManager.getExcludedIpsGlobal", "SitesManager.getExcludedUserAgentsGlobal"):
            if not self.superuser:  # Piwik::checkUserHasSomeAdminAccess
                raise _ApiError("You can't access this resource as it requires 'admin' access.")
            ips = name.endswith("IpsGlobal")
            # Option::get: false for an option never set (a fresh install), as Matomo 4.12.3 answers
            return {"value": (self.excluded_ips_global if ips else self.excluded_user_agents_global) or False}
        if name == "SitesManager.getExcludedQueryParametersGlobal":  # view access, Option::get
            return {"value": self.excluded_parameters_global or False}
        if name == "SitesManager.getSearchKeywordParametersGlobal":
            if not self.superuser:  # Piwik::checkUserHasSomeAdminAccess
                raise _ApiError("You can't access this resource as it requires 'admin' access.")
            names = self.search_keyword_parameters_global
            return {"value": DEFAULT_SEARCH_KEYWORD_PARAMETERS if names is None else names}
        if name == "Live.getLastVisitsDetails":
            return self._live(p)
        if name in ("VisitsSummary.get", "Actions.get"):
            return self._summary(name, p)
        return self._invalidate(p)

    def _site_id(self, raw: str | None) -> int:
        try:
            idsite = int(raw or "")
        except ValueError:
            idsite = None
        if idsite is None or idsite not in self.sites:
            raise _ApiError(f"An unexpected website was found in the request: website id was set to "
                            f"'{raw}' .")
        return idsite

    def _site_dict(self, idsite: int) -> dict:
        site = self.sites[idsite]
        out = {
            "idsite": str(idsite), "name": site.get("name", f"Site {idsite}"),
            "main_url": site.get("main_url", "http://localhost"),
            "ts_created": site.get("ts_created", "2020-01-01 00:00:00"),
            "ecommerce": "0", "sitesearch": "1", "sitesearch_keyword_parameters": "",
            "sitesearch_category_parameters": "", "timezone": site.get("timezone", "UTC"),
            "currency": site.get("currency", "USD"), "exclude_unknown_urls": "0",
            "excluded_ips": "", "excluded_parameters": "", "excluded_user_agents": "",
            "excluded_referrers": "", "group": "", "type": "website", "keep_url_fragment": "0",
            "creator_login": "admin",
        }
        for key, value in site.items():
            if key in ("excluded_ips", "excluded_user_agents", "excluded_parameters", "excluded_referrers",
                       "sitesearch", "sitesearch_keyword_parameters"):
                out[key] = str(value)  # the site's settings, as Matomo stores them (comma-separated)
            else:
                out.setdefault(key, value)
        return out

    def _visits(self, idsite: int) -> list[_Visit]:
        with self._lock:
            rows = [h for h in self._hits if h.idsite == idsite]
        rows.sort(key=lambda r: (r.ts, r.order))
        current: dict[tuple, _Visit] = {}
        visits: list[_Visit] = []
        for row in rows:
            # Matomo recognises a visitor with a user id by that id, whatever the IP; the visit
            # keeps the IP it started from (so a visitIp segment misses its later hits).
            uid = row.params.get("uid")
            key = ("uid", uid) if uid else (row.ip, row.params.get("ua", ""))
            visit = current.get(key)
            if (visit is None or row.ts - visit.last > VISIT_INACTIVITY_SECONDS
                    or row.ts // 86400 != visit.day):
                visit = _Visit(key, row, row.masked_ip)
                visits.append(visit)
                current[key] = visit
            else:
                visit.hits.append(row)
                visit.last = row.ts
        for i, visit in enumerate(visits, 1):
            visit.id = i
        return visits

    def _url_rules(self, idsite: int):
        """The site's URL settings as Matomo's tracker cache holds them (SitesManager.php,
        recordWebsiteDataInCache): site search on or off, the site's keyword parameters or else the
        global ones, the site's plus the global excluded parameters on top of the built-in ones."""
        from analytics_ingest.pretable.matomo_rules import EXCLUDED_QUERY_PARAMETERS, UrlRules

        site = self._site_dict(idsite)
        entries = lambda text: [t.strip() for t in str(text or "").split(",") if t.strip()]  # noqa: E731
        keywords = entries(site["sitesearch_keyword_parameters"]) or entries(
            DEFAULT_SEARCH_KEYWORD_PARAMETERS if self.search_keyword_parameters_global is None
            else self.search_keyword_parameters_global)
        excluded = {e.lower() for e in entries(site["excluded_parameters"]) + entries(self.excluded_parameters_global)}
        return UrlRules(site_search=site["sitesearch"] not in ("", "0"), keyword_parameters=tuple(keywords),
                        excluded=EXCLUDED_QUERY_PARAMETERS | excluded, source=f"fake site {idsite}")

    def write_log_tables(self, db_url: str, idsite: int = 1, prefix: str = "matomo_") -> dict[str, int]:
        """Opt-in: write the site's stored hits into Matomo's raw log tables at ``db_url`` (a
        MySQL/MariaDB SQLAlchemy URL; tables from :data:`MATOMO_LOG_TABLES` created when missing),
        the way Matomo 4.12.3's tracker would have: one ``log_visit`` per visit of the fake's visit
        rules (browser code and major.minor version from DeviceDetector, ``location_ip`` binary),
        ``log_action`` deduplicated by (name, type) with ``hash`` = CRC32 and ``url_prefix``, one
        ``log_link_visit_action`` per action with ``server_time``: page views through
        ``idaction_url`` (type 1), downloads (type 3, whole URL), site searches with
        ``idaction_url`` NULL and the keyword in ``idaction_name`` (type 8), events with
        ``idaction_event_category``. Hits Matomo drops as bots (DeviceDetector or bot IP ranges,
        without ``bots=1``) are left out. The URL and browser rules are the pretable's
        (``analytics_ingest.pretable.matomo_rules``); the real-Matomo check in
        ``docs/real_matomo_checks.md`` is what validates them. Returns row counts per table."""
        import zlib

        from sqlalchemy import create_engine

        from analytics_ingest.matomo.exclusions import MatomoExclusions
        from analytics_ingest.pretable.matomo_rules import MatomoBrowsers

        browsers, bot_ranges = MatomoBrowsers(), MatomoExclusions()
        rules = self._url_rules(int(idsite))
        prefixes = (("http://www.", 1), ("http://", 0), ("https://www.", 3), ("https://", 2))
        actions: dict[tuple[str, int], int] = {}
        action_rows: list[tuple] = []

        def idaction(name: str, kind: int, url_prefix: int | None = None) -> int:
            key = (name, kind)
            if key not in actions:
                actions[key] = len(actions) + 1
                action_rows.append((actions[key], name, zlib.crc32(name.encode("utf-8")), kind, url_prefix))
            return actions[key]

        visit_rows, link_rows = [], []
        for visit in self._visits(int(idsite)):
            kept = [h for h in visit.hits if h.params.get("bots") or not (
                browsers.is_bot(h.params.get("ua", "")) or bot_ranges.reason(h.ip, h.params.get("ua", ""), False))]
            if not kept:
                continue
            label, version = browsers(kept[0].params.get("ua", ""))
            visit_rows.append((visit.id, int(idsite), ipaddress.ip_address(visit.location_ip).packed, label, version))
            for hit in kept:
                params = hit.params
                server_time = _dt.datetime.fromtimestamp(hit.ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                download = "download" in params
                found = rules.action(params.get("download") or params.get("url", ""), download=download)
                url_id = name_id = event_id = None
                if params.get("e_c"):
                    event_id = idaction(params["e_c"], 10)
                if found is not None:
                    kind, name = found
                    if kind == 8:
                        name_id = idaction(name, 8)
                    else:
                        url_prefix = None
                        if kind == 1:
                            original = params.get("url", "")
                            for text, number in prefixes:
                                if original[:len(text)].lower() == text:
                                    url_prefix = number
                                    break
                        url_id = idaction(name, kind, url_prefix)
                link_rows.append((int(idsite), visit.id, url_id, name_id, event_id, server_time,
                                  params.get("pv_id", "")[:6] or None))
        engine = create_engine(db_url)
        try:
            with engine.begin() as conn:
                for ddl in MATOMO_LOG_TABLES:
                    conn.exec_driver_sql(ddl.replace("matomo_", prefix, 1))
                if action_rows:
                    conn.exec_driver_sql(f"INSERT INTO {prefix}log_action (idaction, name, hash, type, url_prefix) "
                                         "VALUES (%s, %s, %s, %s, %s)", action_rows)
                if visit_rows:
                    conn.exec_driver_sql(f"INSERT INTO {prefix}log_visit (idvisit, idsite, location_ip, "
                                         "config_browser_name, config_browser_version) VALUES (%s, %s, %s, %s, %s)",
                                         visit_rows)
                if link_rows:
                    conn.exec_driver_sql(f"INSERT INTO {prefix}log_link_visit_action (idsite, idvisit, idaction_url, "
                                         "idaction_name, idaction_event_category, server_time, idpageview) "
                                         "VALUES (%s, %s, %s, %s, %s, %s, %s)", link_rows)
        finally:
            engine.dispose()
        return {"log_visit": len(visit_rows), "log_action": len(action_rows), "log_link_visit_action": len(link_rows)}

    def _live(self, p: dict) -> list[dict]:
        idsite = self._site_id(p.get("idSite"))
        if self.visits_log is not True:  # plugins/Live/Live.php::checkIsVisitorLogEnabled
            raise _ApiError(VISITS_LOG_OFF_GLOBAL if self.visits_log == "global"
                            else VISITS_LOG_OFF_SITE.format(idsite=idsite))
        (_label, start, end), = _periods(p.get("period", ""), p.get("date", ""), single=True)
        segment = _parse_segment(p.get("segment", ""))
        try:
            limit = int(p.get("filter_limit") or DEFAULT_FILTER_LIMIT)
            offset = max(0, int(p.get("filter_offset") or 0))
        except ValueError:
            raise _ApiError("filter_limit and filter_offset must be integers") from None
        try:  # plugins/Live/Model.php: visit_last_action_time > minTimestamp
            min_ts = int(float(p.get("minTimestamp") or ""))
        except ValueError:
            min_ts = None
        chosen = [v for v in self._visits(idsite)
                  if start <= v.last < end and (min_ts is None or v.last > min_ts)
                  and (segment is None or _segment_matches(segment, v))]
        reverse = (p.get("filter_sort_order") or "desc").lower() != "asc"
        chosen.sort(key=lambda v: (v.last, v.id), reverse=reverse)
        # plugins/Live/Model.php: a limit below 1 means no limit
        chosen = chosen[offset:] if limit < 1 else chosen[offset:offset + limit]
        return [self._visit_dict(idsite, v) for v in chosen]

    def _visit_dict(self, idsite: int, v: _Visit) -> dict:
        ip, ua = v.location_ip, v.hits[0].params.get("ua", "")
        uid = next((h.params["uid"] for h in v.hits if h.params.get("uid")), None)
        details = []
        for h in v.hits:
            prm = h.params
            kind = _action_type(prm)
            url = prm.get("download") if kind == "download" else (
                prm.get("link") if kind == "outlink" else prm.get("url"))
            details.append({
                "type": kind,
                "url": url or prm.get("url"),
                "pageTitle": prm.get("action_name"),
                "pageIdAction": None,
                "idpageview": prm.get("pv_id"),
                "serverTimePretty": _pretty(h.ts),
                "pageId": h.order + 1,
                "timestamp": h.ts,
                "bandwidth": int(prm["bw_bytes"]) if prm.get("bw_bytes", "").isdigit() else None,
            })
        return {
            "idSite": idsite,
            "idVisit": v.id,
            "visitIp": ip,
            "visitorId": hashlib.sha1(f"{v.ip}|{ua}".encode()).hexdigest()[:16],
            "userId": uid,
            "actions": len(v.hits),
            "firstActionTimestamp": v.first,
            "lastActionTimestamp": v.last,
            "serverDate": _day_str(v.first),
            "serverTimestamp": v.last,
            "serverTimePretty": _pretty(v.last),
            "visitDuration": v.last - v.first,
            "actionDetails": details,
        }

    def _summary(self, name: str, p: dict) -> Any:
        idsite = self._site_id(p.get("idSite"))
        spans = _periods(p.get("period", ""), p.get("date", ""), single=False)
        if self.archiving:
            period = (p.get("period") or "").strip().lower()
            results = {label: self._from_archive(name, idsite, period, s, e) for label, s, e in spans}
        else:
            visits = self._visits(idsite)
            results = {label: self._summarise(name, [v for v in visits if s <= v.last < e])
                       for label, s, e in spans}
        if len(spans) == 1 and ("," not in (p.get("date") or "") or p.get("period") == "range"):
            return next(iter(results.values()))
        return results

    def _from_archive(self, name: str, idsite: int, period: str, start: int, end: int) -> Any:
        """The report as archived: ``[]`` when never archived or archived without visits."""
        first, last = _date_of(start), _date_of(end - 1)
        with self._lock:
            if period == "range":  # Matomo builds ranges on request from the archived days
                snaps = [self._archives.get((idsite, "day", str(d))) for d in _days(first, last)]
                visits = [v for snap in snaps if snap for v in snap]
            else:
                visits = list(self._archives.get((idsite, period, str(first))) or ())
        return self._summarise(name, visits) if visits else []

    def archive(self, idsite: int, first: str | _dt.date, last: str | _dt.date) -> dict:
        """Run the fake ``core:archive --force-idsites=idsite --force-date-range=first,last``.

        See the module docstring; returns the run record (also appended to ``archive_runs``).
        """
        if not self.archiving:
            raise RuntimeError("the archive model is off; construct FakeMatomo(archiving=True)")
        idsite = int(idsite)
        if idsite not in self.sites:
            raise ValueError(f"no site {idsite} in this fake Matomo")
        a, b = (d if isinstance(d, _dt.date) else _dt.date.fromisoformat(str(d).strip())
                for d in (first, last))
        if b < a:
            raise ValueError(f"archive range {a},{b}: end before start")
        visits = self._visits(idsite)
        recomputed: list[str] = []
        kept: list[str] = []
        with self._lock:
            fails = self.archive_fails
            for period, start, end in _covering(ARCHIVE_PERIODS, a, b):
                key = (idsite, period, str(start))
                label = f"{period} {start}"
                if key in self._archives and key not in self._invalid:
                    kept.append(label)  # a valid archive is reused, new hits or not
                    continue
                if fails:
                    continue  # the silent failure: nothing recomputed, nothing reported
                s, e = _ts_of(start), _ts_of(end) + 86400
                self._archives[key] = [v for v in visits if s <= v.last < e]
                self._invalid.discard(key)
                recomputed.append(label)
            record = {"idsite": idsite, "from": str(a), "to": str(b), "recomputed": recomputed,
                      "kept": kept, "failed_silently": bool(fails)}
            self.archive_runs.append(record)
        return dict(record)

    def archive_status(self, idsite: int) -> dict[str, str]:
        """``{"day 2024-03-14": "valid" | "invalidated"}`` for every archived or invalidated period."""
        with self._lock:
            keys = {k for k in self._archives if k[0] == int(idsite)}
            keys |= {k for k in self._invalid if k[0] == int(idsite)}
            order = {p: i for i, p in enumerate(ARCHIVE_PERIODS)}
            return {f"{period} {start}": ("invalidated" if (i, period, start) in self._invalid
                                          else "valid")
                    for i, period, start in sorted(keys, key=lambda k: (order[k[1]], k[2]))}

    def _handle_archive(self, h: _Handler, query: str) -> None:
        params = dict(parse_qsl(query, keep_blank_values=True))
        body = h.read_body()
        if body and "json" not in (h.headers.get("Content-Type") or "").lower():
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if not self.archiving:
            h.send_json(409, {"status": "error",
                              "message": "the archive model is off; use FakeMatomo(archiving=True)"})
            return
        try:
            record = self.archive(params.get("idsite", ""), params.get("from", ""), params.get("to", ""))
        except ValueError as exc:
            h.send_json(400, {"status": "error",
                              "message": f"need idsite=<site>&from=YYYY-MM-DD&to=YYYY-MM-DD ({exc})"})
            return
        h.send_json(200, {"status": "success", **record})

    @staticmethod
    def _summarise(name: str, visits: list[_Visit]) -> dict:
        if name == "VisitsSummary.get":
            n = len(visits)
            actions = sum(len(v.hits) for v in visits)
            length = sum(v.last - v.first for v in visits)
            bounces = sum(1 for v in visits if len(v.hits) == 1)
            return {
                "nb_uniq_visitors": len({v.key for v in visits}),
                "nb_users": len({h.params["uid"] for v in visits for h in v.hits if h.params.get("uid")}),
                "nb_visits": n,
                "nb_actions": actions,
                "nb_visits_converted": 0,
                "bounce_count": bounces,
                "sum_visit_length": length,
                "max_actions": max((len(v.hits) for v in visits), default=0),
                "bounce_rate": f"{round(100 * bounces / n) if n else 0}%",
                "nb_actions_per_visit": round(actions / n, 1) if n else 0,
                "avg_time_on_site": round(length / n) if n else 0,
            }
        kinds: Counter = Counter()
        uniq: dict[str, set] = {"action": set(), "download": set(), "outlink": set()}
        for v in visits:
            for h in v.hits:
                kind = _action_type(h.params)
                kinds[kind] += 1
                if kind in uniq:
                    uniq[kind].add((v.id, h.params.get("download") or h.params.get("link")
                                    or h.params.get("url")))
        return {
            "nb_pageviews": kinds["action"], "nb_uniq_pageviews": len(uniq["action"]),
            "nb_downloads": kinds["download"], "nb_uniq_downloads": len(uniq["download"]),
            "nb_outlinks": kinds["outlink"], "nb_uniq_outlinks": len(uniq["outlink"]),
            "nb_searches": 0, "nb_keywords": 0,
        }

    def _invalidate(self, p: dict) -> dict:
        raw_sites = (p.get("idSites") or "").strip()
        if raw_sites == "all":
            site_ids = sorted(self.sites)
        else:
            site_ids = [self._site_id(x.strip()) for x in raw_sites.split(",") if x.strip()]
            if not site_ids:
                raise _ApiError("Please specify a value for 'idSites'.")
        dates = []
        for part in (p.get("dates") or "").split(","):
            if part.strip():
                dates.append(str(_parse_day(part)))
        if not dates:
            raise _ApiError("Please specify a value for 'dates'.")
        period = p.get("period") or None
        if period and period not in ("day", "week", "month", "year", "range"):
            raise _ApiError(f"The period '{period}' is not supported.")
        record = {"idSites": site_ids, "dates": dates, "period": period,
                  "segment": p.get("segment") or None,
                  "cascadeDown": (p.get("cascadeDown") or "").lower() in ("1", "true")}
        with self._lock:
            self.invalidations.append(record)
            if self.archiving:
                self._invalid |= self._invalidated_keys(site_ids, dates, period, record["cascadeDown"])
        return {"result": "success",
                "message": "Success. The reports for the given websites and dates were invalidated "
                           "and will be reprocessed by the next archiving run."}

    @staticmethod
    def _invalidated_keys(site_ids: list[int], dates: list[str], period: str | None,
                          cascade: bool) -> set[tuple[int, str, str]]:
        """Archive keys an invalidation hits (see the module docstring)."""
        if period is None:
            periods: tuple[str, ...] = ARCHIVE_PERIODS  # every period holding the date
        elif period == "range":
            return set()  # ranges are never stored, they are built from days on request
        else:
            periods = (period,)
        keys = set()
        for text in dates:
            day = _dt.date.fromisoformat(text)
            spans = _covering(periods, day, day)
            if cascade and period is not None:
                _p, start, end = spans[0]
                shorter = ARCHIVE_PERIODS[:ARCHIVE_PERIODS.index(period)]
                spans += _covering(shorter, start, end)
            keys |= {(idsite, p, str(start)) for idsite in site_ids for p, start, _e in spans}
        return keys
