"""COUNTER Release 5.1 item and title metrics from pretable rows.

Input: the rows of a pretable (SciELO's 7 columns, :data:`COLUMNS`), as

* tuples or lists in column order: ``(serverTime, browserName, browserVersion, ip, latitude,
  longitude, actionName)``,
* dicts keyed by the column names (a missing key is a missing value),
* a pandas DataFrame with those columns (NaN/NaT are missing values), or
* any iterable of the above, e.g. :func:`analytics_ingest.counter.output.read_pretable_tsv`.

``serverTime`` is ``"YYYY-MM-DD HH:MM:SS"`` in UTC (``T`` instead of the space, fractions of a
second and a ``Z``/``±HH:MM`` suffix are accepted) or a ``datetime`` (naive = UTC). Missing
values are ``None``. Latitude and longitude are not used.

Output (:func:`compute`): one :class:`ItemMetrics` row per (date, item) with
Total_Item_Investigations, Unique_Item_Investigations, Total_Item_Requests,
Unique_Item_Requests; one :class:`TitleMetrics` row per (date, title) with the same four plus
Unique_Title_Investigations and Unique_Title_Requests (hits without a title are left out of the
title table); and :class:`CounterStats`, the counts for the report.

Rules (COUNTER Code of Practice R5.1, section numbers of the CoP):

1. **Every row is counted in exactly one of**: invalid (no actionName, no usable serverTime, no
   ip, not a row at all), robot, unknown item, matched. ``rows_read`` is their sum. Nothing
   raises on a bad row. Order of the checks: invalid, robot, item.
2. **Robots and machines** (§7.8): the default lists are COUNTER's own, from the
   ``counter-robots`` package (:data:`ROBOTS`: the COUNTER-Robots robot patterns, :data:`MACHINES`:
   the machine/script patterns of the Code of Practice for Research Data; :data:`ROBOTS_LIST` names
   the version and the counts, and the daily step reports it). Both kinds are excluded: a script
   (curl, python-requests, a PHP client) is not human usage, and COUNTER R5.1 counts only
   user-driven Regular usage. ``rows_robot`` counts every excluded row, ``rows_machine`` the part of
   it that matched the machine list (checked first; 34 of its 35 patterns are robot patterns too).
   Matching is ``re.search``, case-insensitive (as SciELO's fork, which lowercases the agent; the
   list mixes ``Wget`` and ``bot`` for agents that write ``wget`` and ``Bot``), through one compiled
   alternation per list, once per distinct (browserName, browserVersion).

   What is matched: the pretable has no user-agent column, so the text is ``browserName`` --
   a raw user agent when the extractor wrote one there (then the patterns apply as COUNTER means
   them), otherwise a parsed name (``ua-parser``'s family, Matomo's name or 2-letter code), as it
   is and joined to its version as SciELO builds the agent (``curl`` + ``8.4`` → ``curl/8.4``
   meets COUNTER's ``curl/`` pattern), and for a multi-word name also without its spaces
   (``Headless Chrome`` meets ``HeadlessChrome``). A parsed name in :data:`HUMAN_BROWSERS` is never a robot: those are
   browsers whose names a COUNTER pattern matches although their user agents do not (``Yandex
   Browser`` ~ ``yandex``, ``Sailfish Browser`` ~ ``[^a]fish``, ``Firefox`` ~ ``^firefox$``, Matomo's
   ``Unknown`` ~ ``^unknown$``: an unparsed agent, not a robot). Pass ``robots=`` / ``machines=``
   to replace a list, ``extra_robots=`` to add patterns.
3. **Items** come from :class:`~analytics_ingest.counter.items.ItemRules`: every matched hit is an
   Investigation, and also a Request when its content type is a request type (§3.3.3).
4. **User** = ip + browserName + browserVersion (§7.2 option 1, IP + user agent; there are no
   cookies or logins in a pretable). IPv6 addresses are compared in canonical form and an
   IPv4-mapped IPv6 address is its IPv4 address. A row without an ip is invalid: SciELO's
   extraction (``inet_ntoa``) gives NULL for every IPv6 visitor, and counting all of them as one
   user would merge their sessions and remove their clicks as double clicks of each other.
5. **Double clicks** (§7.2): two clicks of the same user on the same item with the same content
   type and format, at most 30 s apart (10:01:00 and 10:01:29: one click; 10:01:00 and 10:01:35:
   two), are one action: the earlier click is removed and the later kept, and a chain collapses
   to its last click. The comparison uses the user, not the session, so it works across the hour
   (and the midnight) boundary. A removed click is gone for every metric, Totals and Uniques,
   as in SciELO's access-counter: a click at 10:59:50 removed by one at 11:00:10 leaves only the
   11 o'clock session with the item.
6. **Session** = user + date + hour of serverTime (§7.3, the surrogate session ID
   ``192.1.1.168|Mozilla/5.0|2024-06-15|13``; see :func:`session_id`). The same user at 23:55
   and at 00:05 of the next day is in two sessions.
7. **Unique_Item_*** = 1 per item per session (§7.3): an HTML view and a PDF download of one
   article in one session are 2 Total_Item_Requests and 1 Unique_Item_Requests.
   **Unique_Title_*** = 1 per title per session (§7.4); the title's Unique_Item_* count its
   distinct (session, item) pairs (twelve chapters of one book in a session: 12 Unique_Item_Requests,
   1 Unique_Title_Requests).

Deviations, on purpose:

* **From SciELO** (access-counter ``models/counter.py``): SciELO counts ``unique_item_*`` as the
  number of distinct (session, content type) pairs of an article key that includes format and
  language, so HTML + PDF of one article in one session are 2 unique requests. Here it is 1, as
  COUNTER says. SciELO also drops rows whose latitude/longitude is NULL ("local network"); here
  they count (geolocation is not a COUNTER criterion; filter them before if you want SciELO's
  numbers). SciELO's Unique_Title is not implemented at all (journal uniques are sums of
  article uniques).
* **From COUNTER**: COUNTER defines Unique_Title_* for books (Data_Types Book and Reference_Work)
  only; here they are computed for whatever the rules call a title (for SciELO a journal), so
  leave them out of a COUNTER journal report. Items and titles are keyed per calendar day of
  serverTime too; since sessions never cross a date, the daily rows add up exactly to a month.

Order and memory: the input may come in any order (SciELO's pretables are ordered by ip,
ours by time). The matched hits, in a compact form, are sorted by (user, time); up to
``spill_hits`` of them are held in memory, beyond that sorted runs go to temporary files and are
merged. The counting pass then holds only the current user's pending clicks (for double clicks)
and sessions (for uniques), plus one row per item and title.

A pretable covers one UTC day, but a double click can straddle midnight. To count day D
exactly, pass D's rows plus the first minute of D+1 and ``dates=D``: rows of other dates still
take part in double-click filtering but are not counted (``hits_outside_dates``).
"""

from __future__ import annotations

import datetime as dt
import heapq
import ipaddress
import math
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata, resources

from ..errors import ConfigError, InputError
from .items import ItemRules, load_rules

COLUMNS = ("serverTime", "browserName", "browserVersion", "ip", "latitude", "longitude", "actionName")
DOUBLE_CLICK_SECONDS = 30  # §7.2

COUNTER_ROBOTS_PACKAGE = "counter-robots"


def _counter_list(name: str) -> tuple[str, ...]:
    """The patterns of one list of the ``counter-robots`` package (``robot.txt``, ``machine.txt``),
    in order, without blank lines or repeats. An unreadable or empty list is a ConfigError: an
    empty default would silently count every robot as a human."""
    try:
        text = resources.files("counter_robots").joinpath("data", name).read_text(encoding="utf-8")
    except (ImportError, OSError) as exc:
        raise ConfigError(f"the COUNTER-Robots list {name} cannot be read ({exc}); install the project's "
                          f"dependencies again (pip install -e .) to get {COUNTER_ROBOTS_PACKAGE}") from None
    patterns = tuple(dict.fromkeys(line for line in text.splitlines() if line.strip()))
    if not patterns:
        raise ConfigError(f"the COUNTER-Robots list {name} of {COUNTER_ROBOTS_PACKAGE} is empty; reinstall "
                          f"{COUNTER_ROBOTS_PACKAGE} (pip install --force-reinstall {COUNTER_ROBOTS_PACKAGE})")
    return patterns


ROBOTS: tuple[str, ...] = _counter_list("robot.txt")
MACHINES: tuple[str, ...] = _counter_list("machine.txt")
def _package_version() -> str:
    try:
        return metadata.version(COUNTER_ROBOTS_PACKAGE)
    except metadata.PackageNotFoundError:  # the data files without their metadata (a vendored copy)
        return "(version unknown)"


ROBOTS_LIST = (f"COUNTER-Robots {_package_version()} "
               f"({len(ROBOTS)} robot + {len(MACHINES)} machine patterns)")

# Parsed browser names (ua-parser's families, Matomo's DeviceDetector names) of human browsers that
# a COUNTER pattern matches, found by matching both name lists against the COUNTER lists: the
# patterns aim at robots' user agents (YandexBot, SogouSpider, a bare "firefox"), not at these names.
HUMAN_BROWSERS = frozenset({
    "Amiga Voyager", "Baidu Browser", "Baidu Explorer", "Baidu Spark", "Coc Coc", "Firefox", "Google",
    "Google Earth", "Google Earth Pro", "Mail.ru Chromium Browser", "Sailfish Browser", "Sogou Explorer",
    "Sogou Mobile Browser", "Sunrise", "Unknown", "Yahoo! Japan Browser", "Yandex Browser", "Yandex Browser Lite",
})

ITEM_METRICS = ("Total_Item_Investigations", "Unique_Item_Investigations", "Total_Item_Requests",
                "Unique_Item_Requests")
TITLE_METRICS = ITEM_METRICS + ("Unique_Title_Investigations", "Unique_Title_Requests")
ITEM_COLUMNS = ("date", "item", "title") + ITEM_METRICS
TITLE_COLUMNS = ("date", "title") + TITLE_METRICS

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_TIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
_MAX_EXAMPLES = 10


@dataclass(slots=True)
class ItemMetrics:
    date: str  # YYYY-MM-DD of serverTime (UTC)
    item: str
    title: str | None  # the first title a counted hit of the item had
    total_item_investigations: int = 0
    unique_item_investigations: int = 0
    total_item_requests: int = 0
    unique_item_requests: int = 0

    def values(self) -> tuple:
        """The row in :data:`ITEM_COLUMNS` order."""
        return (self.date, self.item, self.title, self.total_item_investigations, self.unique_item_investigations,
                self.total_item_requests, self.unique_item_requests)


@dataclass(slots=True)
class TitleMetrics:
    date: str
    title: str
    total_item_investigations: int = 0
    unique_item_investigations: int = 0
    total_item_requests: int = 0
    unique_item_requests: int = 0
    unique_title_investigations: int = 0
    unique_title_requests: int = 0

    def values(self) -> tuple:
        """The row in :data:`TITLE_COLUMNS` order."""
        return (self.date, self.title, self.total_item_investigations, self.unique_item_investigations,
                self.total_item_requests, self.unique_item_requests, self.unique_title_investigations,
                self.unique_title_requests)


@dataclass
class CounterStats:
    """Counts for the report. ``rows_read = rows_invalid + rows_robot + rows_unknown_item + rows_matched``
    and ``rows_matched = hits_counted + double_clicks_removed + hits_outside_dates``."""

    rows_read: int = 0
    rows_invalid: int = 0
    invalid_no_action: int = 0  # actionName missing or empty
    invalid_time: int = 0  # serverTime missing or not a time
    invalid_no_ip: int = 0  # ip missing (e.g. SciELO's IPv6 rows)
    invalid_shape: int = 0  # not a 7-column row
    rows_robot: int = 0  # robots and machines (scripts): every row excluded as not human
    rows_machine: int = 0  # of rows_robot, those that matched the machine list
    rows_unknown_item: int = 0  # no rule matched
    rows_matched: int = 0
    double_clicks_removed: int = 0
    hits_outside_dates: int = 0  # matched, but on a date not asked for (double-click context only)
    hits_counted: int = 0  # = Total_Item_Investigations summed over items
    sessions: int = 0  # sessions with at least one counted hit
    items: int = 0  # rows of the item table
    titles: int = 0  # rows of the title table
    sorted_runs_spilled: int = 0  # temporary files used by the sort (0: all in memory)
    unknown_examples: list[str] = field(default_factory=list)  # the first distinct unknown actionNames

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CounterResult:
    items: list[ItemMetrics]  # sorted by (date, item)
    titles: list[TitleMetrics]  # sorted by (date, title)
    stats: CounterStats
    robots_list: str = ROBOTS_LIST  # the robot and machine lists used (see describe_robot_lists)

    def item(self, item: str, date: str | None = None) -> ItemMetrics | None:
        """The row of ``item`` (on ``date``, needed when the result covers several dates)."""
        return _find(self.items, "item", item, date)

    def title(self, title: str, date: str | None = None) -> TitleMetrics | None:
        return _find(self.titles, "title", title, date)

    def items_frame(self):
        """The item table as a pandas DataFrame with :data:`ITEM_COLUMNS`."""
        import pandas as pd

        return pd.DataFrame([r.values() for r in self.items], columns=list(ITEM_COLUMNS)).astype(
            {c: "int64" for c in ITEM_METRICS})

    def titles_frame(self):
        """The title table as a pandas DataFrame with :data:`TITLE_COLUMNS`."""
        import pandas as pd

        return pd.DataFrame([r.values() for r in self.titles], columns=list(TITLE_COLUMNS)).astype(
            {c: "int64" for c in TITLE_METRICS})


def _find(rows, attr: str, key: str, date: str | None):
    found = [r for r in rows if getattr(r, attr) == key and (date is None or r.date == str(date))]
    if len(found) > 1:
        raise ValueError(f"{attr} {key!r} has rows on {len(found)} dates; pass date=")
    return found[0] if found else None


def session_id(ip: str, browser_name: str | None, browser_version: str | None, server_time) -> str:
    """COUNTER's surrogate session ID (R5.1 §7.3): ``ip|user agent|YYYY-MM-DD|hour``.

    The user agent is ``browserName/browserVersion`` as SciELO's access-counter builds it, so
    ``session_id("192.1.1.168", "Mozilla", "5.0", "2024-06-15 13:35:00")`` is the CoP's example
    ``192.1.1.168|Mozilla/5.0|2024-06-15|13``. :func:`compute` groups hits by exactly these parts.
    """
    t = _epoch(server_time)
    if t is None:
        raise ValueError(f"not a serverTime: {server_time!r}")
    day, seconds = divmod(t, 86400)
    agent = "/".join(p for p in (_text(browser_name) or "", _text(browser_version) or "") if p)
    return f"{_ip(str(ip))}|{agent}|{_date_text(day)}|{seconds // 3600:02d}"


_UPPER_ESCAPE = re.compile(r"\\[A-Z]")  # \S, \D, \W, \B, \A, \Z...: lowercasing would change them


def _alternation(patterns: tuple[str, ...], kind: str):
    """``text -> bool``: does any of ``patterns`` match ``text`` (``re.search``, case-insensitive)?

    One compiled alternation. Patterns without an upper-case escape are lowercased and matched,
    without IGNORECASE, against the lowercased text: the same matches, about four times faster on
    user agents that match nothing (92 against 370 µs for the 327 COUNTER robot patterns). A
    pattern that does not compile is a :class:`ConfigError` naming it.
    """
    lowered, as_is = [], []
    for p in patterns:
        if not isinstance(p, str) or not p:
            raise ConfigError(f"{kind} pattern {p!r} must be a non-empty regex text")
        try:
            re.compile(p)
        except re.error as exc:
            raise ConfigError(f"{kind} pattern {p!r} does not compile ({exc}); fix or remove it") from None
        (as_is if _UPPER_ESCAPE.search(p) else lowered).append(p)
    low = re.compile("|".join(f"(?:{p.lower()})" for p in lowered)).search if lowered else None
    other = re.compile("|".join(f"(?:{p})" for p in as_is), re.IGNORECASE).search if as_is else None
    if low is None and other is None:
        return lambda text: False
    if other is None:
        return lambda text: low(text.lower()) is not None
    if low is None:
        return lambda text: other(text) is not None
    return lambda text: low(text.lower()) is not None or other(text) is not None


def robot_matcher(patterns: Iterable[str]):
    """A cached ``text -> bool`` for ``patterns`` (case-insensitive ``re.search`` of any of them)."""
    matches = _alternation(tuple(patterns), "robot")
    return lru_cache(maxsize=1 << 14)(matches)


class AgentClassifier:
    """``(browserName, browserVersion) -> "robot" | "machine" | None`` (None: human), cached per
    distinct pair; see rule 2 of the module docstring for what is matched."""

    def __init__(self, robots: Iterable[str] = ROBOTS, machines: Iterable[str] = MACHINES,
                 human_browsers: frozenset[str] = HUMAN_BROWSERS) -> None:
        self._robot = _alternation(tuple(robots), "robot")
        self._machine = _alternation(tuple(machines), "machine")
        self._human = human_browsers
        self._cache: dict[tuple[str, str], str | None] = {}

    def agent(self, text: str) -> str | None:
        """The kind of a raw user agent (no name guard, no version)."""
        if self._machine(text):
            return "machine"
        return "robot" if self._robot(text) else None

    def __call__(self, name: str, version: str = "") -> str | None:
        key = (name, version)
        found = self._cache.get(key, "")
        if found != "":
            return found
        found = None
        raw = "/" in name or "(" in name  # a user agent, not a parsed name
        if raw or name not in self._human:
            texts = [name]
            if not raw:
                joined = f"{name}/{version}" if version else name
                texts += [joined, joined.replace(" ", "")] if " " in name else [joined]
            for text in dict.fromkeys(texts):
                found = self.agent(text)
                if found:
                    break
        if len(self._cache) >= 1 << 16:
            self._cache.clear()
        self._cache[key] = found
        return found


def describe_robot_lists(robots: tuple[str, ...], machines: tuple[str, ...], extra: tuple[str, ...]) -> str:
    """What :data:`ROBOTS_LIST` says, for the lists actually used."""
    if robots == ROBOTS and machines == MACHINES:
        text = ROBOTS_LIST
    else:
        text = f"custom lists ({len(robots)} robot + {len(machines)} machine patterns)"
    return f"{text} + {len(extra)} extra robot pattern{'s' if len(extra) != 1 else ''}" if extra else text


def compute(
    rows,
    rules: ItemRules | str | os.PathLike,
    *,
    robots: Iterable[str] = ROBOTS,
    extra_robots: Iterable[str] = (),
    machines: Iterable[str] = MACHINES,
    dates=None,
    double_click_seconds: int = DOUBLE_CLICK_SECONDS,
    spill_hits: int = 500_000,
    tmp_dir: str | os.PathLike | None = None,
) -> CounterResult:
    """COUNTER item and title metrics of ``rows`` (see the module docstring for the rules).

    ``rules``: an :class:`ItemRules` or the path of a rules YAML file. ``robots`` / ``machines``:
    the robot and machine patterns (default COUNTER's, see rule 2); ``extra_robots``: more robot
    patterns. ``dates``: a date (or
    ``YYYY-MM-DD``) or a collection of them to count; other dates only serve as double-click
    context. ``spill_hits``: matched hits held in memory before sorted runs go to temporary files
    (in ``tmp_dir``, default the system's).
    """
    if not isinstance(rules, ItemRules):
        rules = load_rules(rules)
    robots, machines, extra_robots = tuple(robots), tuple(machines), tuple(extra_robots)
    classify = AgentClassifier(robots + extra_robots, machines)
    wanted = _wanted_dates(dates)
    stats = CounterStats()
    with _Sorter(spill_hits, tmp_dir) as hits:
        _collect(_iter_rows(rows), rules, classify, hits, stats)
        stats.sorted_runs_spilled = hits.spilled
        result = _count(hits, wanted, double_click_seconds, stats)
    result.robots_list = describe_robot_lists(robots, machines, extra_robots)
    return result


# -- pass 1: rows -> compact matched hits -------------------------------------------------------
def _iter_rows(rows) -> Iterator:
    if hasattr(rows, "itertuples") and hasattr(rows, "columns"):  # a pandas DataFrame
        missing = [c for c in COLUMNS if c not in rows.columns]
        if missing:
            raise InputError(f"the pretable DataFrame lacks column{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}; it needs {', '.join(COLUMNS)}")
        return rows[list(COLUMNS)].itertuples(index=False, name=None)
    return iter(rows)


def _collect(rows, rules: ItemRules, classify: AgentClassifier, hits: _Sorter, stats: CounterStats) -> None:
    match = rules.match
    names: dict[str, str] = {}  # interned browser names and versions (they repeat a lot)
    unknown_seen: set[str] = set()
    for row in rows:
        stats.rows_read += 1
        if isinstance(row, dict):
            server_time, bname, bver, ip = (row.get("serverTime"), row.get("browserName"),
                                             row.get("browserVersion"), row.get("ip"))
            action = row.get("actionName")
        elif isinstance(row, (tuple, list)) and len(row) == 7:
            server_time, bname, bver, ip, _lat, _lon, action = row
        else:
            stats.rows_invalid += 1
            stats.invalid_shape += 1
            continue
        action = _text(action)
        if not action:
            stats.rows_invalid += 1
            stats.invalid_no_action += 1
            continue
        t = _epoch(server_time)
        if t is None:
            stats.rows_invalid += 1
            stats.invalid_time += 1
            continue
        ip = _text(ip)
        if ip is None:
            stats.rows_invalid += 1
            stats.invalid_no_ip += 1
            continue
        bname = _text(bname) or ""
        bver = _text(bver) or ""
        if bname:
            kind = classify(bname, bver)
            if kind is not None:
                stats.rows_robot += 1
                if kind == "machine":
                    stats.rows_machine += 1
                continue
        hit = match(action)
        if hit is None:
            stats.rows_unknown_item += 1
            if len(unknown_seen) < _MAX_EXAMPLES and action not in unknown_seen:
                unknown_seen.add(action)
                stats.unknown_examples.append(action)
            continue
        stats.rows_matched += 1
        if ":" in ip:
            ip = _ip(ip)  # IPv6 (or IPv4-mapped): canonical form; IPv4 text is taken as it is
        bname = names.setdefault(bname, sys.intern(bname))
        bver = names.setdefault(bver, sys.intern(bver))
        # (user..., time, item, content type, format, title, request): sortable, no None
        hits.add((ip, bname, bver, t, hit.item, hit.content_type or "", hit.format or "", hit.title or "",
                  hit.is_request))


def _text(value) -> str | None:
    """A cell as text: None, NaN, NaT and blank are missing."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        value = repr(value)
    elif not isinstance(value, str):
        try:
            missing = bool(value != value)  # NaT and other NaN-likes
        except (TypeError, ValueError):  # pandas.NA: "boolean value of NA is ambiguous"
            missing = True
        if missing:
            return None
        value = str(value)
    value = value.strip()
    return value or None


@lru_cache(maxsize=1 << 17)
def _ip(text: str) -> str:
    """Canonical text of an address (IPv6 compressed, lower case; IPv4-mapped -> IPv4); other
    text (an anonymised form, say) as it is."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return text
    mapped = getattr(addr, "ipv4_mapped", None)
    return str(mapped or addr)


@lru_cache(maxsize=1 << 12)
def _day(date_text: str) -> int | None:
    try:
        return dt.date.fromisoformat(date_text).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


@lru_cache(maxsize=1 << 12)
def _date_text(day: int) -> str:
    return dt.date.fromordinal(day + _EPOCH_ORDINAL).isoformat()


def _epoch(value) -> int | None:
    """Seconds since 1970-01-01 UTC, or None when ``value`` is not a time."""
    if isinstance(value, str):
        m = _TIME_RE.fullmatch(value.strip())
        if m is None:
            return None
        date_text, hh, mm, ss, offset = m.groups()
        day = _day(date_text)
        h, mi, s = int(hh), int(mm), int(ss)
        if day is None or h > 23 or mi > 59 or s > 59:
            return None
        t = day * 86400 + h * 3600 + mi * 60 + s
        if offset and offset != "Z":
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            t -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        return t
    if isinstance(value, dt.datetime):
        try:
            if value.tzinfo is not None and value.utcoffset() is not None:
                value = value.astimezone(dt.timezone.utc)
            return (value.toordinal() - _EPOCH_ORDINAL) * 86400 + value.hour * 3600 + value.minute * 60 + value.second
        except (ValueError, OverflowError):
            return None
    return None


def _wanted_dates(dates) -> frozenset[str] | None:
    if dates is None:
        return None
    if isinstance(dates, (str, dt.date)):
        dates = [dates]
    out = set()
    for d in dates:
        if isinstance(d, dt.datetime):
            d = d.date()
        if isinstance(d, dt.date):
            out.add(d.isoformat())
            continue
        try:
            out.add(dt.date.fromisoformat(str(d)).isoformat())
        except ValueError:
            raise ConfigError(f"dates: {d!r} is not a date; write YYYY-MM-DD") from None
    return frozenset(out)


# -- sort: in memory, or sorted runs on disk merged ----------------------------------------------
class _Sorter:
    """Collects tuples and gives them back sorted, holding at most ``limit`` in memory."""

    _BATCH = 10_000

    def __init__(self, limit: int, tmp_dir) -> None:
        self.limit = max(1, int(limit))
        self.tmp_dir = tmp_dir
        self.buffer: list[tuple] = []
        self.runs: list[str] = []
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def spilled(self) -> int:
        return len(self.runs)

    def __enter__(self) -> _Sorter:
        return self

    def __exit__(self, *exc) -> None:
        self.buffer = []
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def add(self, record: tuple) -> None:
        self.buffer.append(record)
        if len(self.buffer) >= self.limit:
            self._spill()

    def _spill(self) -> None:
        self.buffer.sort()
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="counter-sort-", dir=self.tmp_dir)
        path = os.path.join(self._dir.name, f"run-{len(self.runs):05d}.pickle")
        with open(path, "wb") as out:
            for i in range(0, len(self.buffer), self._BATCH):
                pickle.dump(self.buffer[i:i + self._BATCH], out, protocol=pickle.HIGHEST_PROTOCOL)
        self.runs.append(path)
        self.buffer = []

    def __iter__(self) -> Iterator[tuple]:
        if not self.runs:
            self.buffer.sort()
            return iter(self.buffer)
        if self.buffer:
            self._spill()
        return heapq.merge(*(self._read(p) for p in self.runs))

    @staticmethod
    def _read(path: str) -> Iterator[tuple]:
        with open(path, "rb") as src:
            while True:
                try:
                    batch = pickle.load(src)
                except EOFError:
                    return
                yield from batch


# -- pass 2: sorted hits -> metrics -------------------------------------------------------------
def _count(hits: Iterable[tuple], wanted: frozenset[str] | None, window: int, stats: CounterStats) -> CounterResult:
    items: dict[tuple[str, str], ItemMetrics] = {}
    titles: dict[tuple[str, str], TitleMetrics] = {}
    pending: dict[tuple[str, str, str], tuple] = {}  # (item, content type, format) -> last click
    sessions: dict[tuple[int, int], tuple[set, set]] = {}  # (day, hour) -> ({(item, title)}, same for requests)

    def keep(rec: tuple) -> None:
        _ip_, _bn, _bv, t, item, _ct, _fmt, title, request = rec
        day, seconds = divmod(t, 86400)
        date = _date_text(day)
        if wanted is not None and date not in wanted:
            stats.hits_outside_dates += 1
            return
        stats.hits_counted += 1
        row = items.get((date, item))
        if row is None:
            row = items[(date, item)] = ItemMetrics(date, item, title or None)
        elif row.title is None and title:
            row.title = title
        row.total_item_investigations += 1
        if request:
            row.total_item_requests += 1
        if title:
            trow = titles.get((date, title))
            if trow is None:
                trow = titles[(date, title)] = TitleMetrics(date, title)
            trow.total_item_investigations += 1
            if request:
                trow.total_item_requests += 1
        session = sessions.get((day, seconds // 3600))
        if session is None:
            session = sessions[(day, seconds // 3600)] = (set(), set())
        session[0].add((item, title))
        if request:
            session[1].add((item, title))

    def drop(rec: tuple) -> None:
        if wanted is not None and _date_text(rec[3] // 86400) not in wanted:
            stats.hits_outside_dates += 1
        else:
            stats.double_clicks_removed += 1

    def end_user() -> None:
        for rec in pending.values():
            keep(rec)
        pending.clear()
        for (day, _hour), (investigated, requested) in sessions.items():
            stats.sessions += 1
            date = _date_text(day)
            for pairs, item_attr, title_item_attr, title_attr in (
                (investigated, "unique_item_investigations", "unique_item_investigations",
                 "unique_title_investigations"),
                (requested, "unique_item_requests", "unique_item_requests", "unique_title_requests"),
            ):
                for item in {item for item, _title in pairs}:
                    row = items[(date, item)]
                    setattr(row, item_attr, getattr(row, item_attr) + 1)
                for _item, title in pairs:  # distinct (item, title) pairs of the session
                    if title:
                        trow = titles[(date, title)]
                        setattr(trow, title_item_attr, getattr(trow, title_item_attr) + 1)
                for title in {title for _item, title in pairs if title}:
                    trow = titles[(date, title)]
                    setattr(trow, title_attr, getattr(trow, title_attr) + 1)
        sessions.clear()

    user = None
    for rec in hits:
        if rec[:3] != user:
            end_user()
            user = rec[:3]
        key = (rec[4], rec[5], rec[6])
        previous = pending.get(key)
        if previous is not None:
            if rec[3] - previous[3] <= window:
                drop(previous)  # a double click: the earlier click goes, the later one stays pending
            else:
                keep(previous)
        pending[key] = rec
    end_user()

    item_rows = [items[k] for k in sorted(items)]
    title_rows = [titles[k] for k in sorted(titles)]
    stats.items, stats.titles = len(item_rows), len(title_rows)
    return CounterResult(item_rows, title_rows, stats)
