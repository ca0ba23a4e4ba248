"""COUNTER Release 5.1 item and title metrics from pretable rows.

Input: the rows of a pretable (SciELO's 7 columns, :data:`COLUMNS`), as

* tuples or lists in column order: ``(serverTime, browserName, browserVersion, ip, latitude,
  longitude, actionName)``,
* dicts keyed by the column names (a missing key is a missing value),
* a pandas DataFrame with those columns (NaN/NaT are missing values),
* a pyarrow Table or RecordBatch with those columns (latitude and longitude may be left out), e.g.
  the pretable's Parquet form,
* a :class:`PretableColumns` (what all of the above become first), or
* any iterable of rows, e.g. :func:`analytics_ingest.counter.output.read_pretable_tsv`.

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
   them), otherwise a parsed name (Matomo's DeviceDetector name or 2-letter code), as it
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
8. **Item titles**: the rules take an item's title from each hit's URL, so one item may come
   with several titles (an article moved to another journal, a URL without the journal). The
   ``title`` of an item row (date, item) is the title of its **earliest counted hit that has a
   title** (serverTime; removed double clicks and hits of other dates do not count), and among hits
   of that same second the title that sorts first as text; None when no counted hit has one. The
   rule depends only on the item's own hits, not on the input order or on who the users are (an
   order of counting by ip would let 10.0.0.1 at 15:00 win over 10.0.0.2 at 09:00). Each hit still
   counts under its own title in the title table; only the item row shows one title.

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
ours by time). It is first turned into columns (:class:`PretableColumns`): serverTime as seconds
since 1970 (int64), and each text column factorised, i.e. one code per row (int32) plus its
distinct texts, so a day of 750,000 rows is 18 MB however long its URLs. Everything that depends
on a text is then decided once per distinct value: the robot decision per distinct
(browserName, browserVersion), the item per distinct actionName, the canonical ip per distinct ip.
Double clicks, sessions and the counts are numpy operations on the codes (one sort by user, click
key and time for the double clicks; sorts, diffs and ``bincount`` for the distinct counts), whose
temporaries are a few arrays of the matched hits. No Python object is made per row, except when
the input is itself Python rows (tuples, dicts): those are read in batches of 65,536.

A pretable covers one UTC day, but a double click can straddle midnight. To count day D
exactly, pass D's rows plus the first minute of D+1 and ``dates=D``: rows of other dates still
take part in double-click filtering but are not counted (``hits_outside_dates``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata, resources

import numpy as np

from ..errors import ConfigError, InputError
from ..pretable.schema import COLUMNS  # the pretable owns its columns
from .items import ItemRules, load_rules

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

# Parsed browser names (Matomo's DeviceDetector names; ua-parser's families of older pretables) of human browsers that
# a COUNTER pattern matches, found by matching both name lists against the COUNTER lists: the
# patterns aim at robots' user agents (YandexBot, SogouSpider, a bare "firefox"), not at these names.
HUMAN_BROWSERS = frozenset({
    "Amiga Voyager", "Baidu Browser", "Baidu Explorer", "Baidu Spark", "Coc Coc", "Firefox", "Google",
    "Google Earth", "Google Earth Pro", "Mail.ru Chromium Browser", "Sailfish Browser", "Sogou Explorer",
    "Sogou Mobile Browser", "Sunrise", "Unknown", "Yahoo! Japan Browser", "Yandex Browser", "Yandex Browser Lite",
    "Yandex Browser Corp",
    # DeviceDetector's names of apps people browse with (the pretable's browserName is Matomo's name
    # since both pretable sources agree): COUNTER's crawler patterns (google, yahoo, yandex, baidu...)
    # meet the names, not their user agents
    "Alexa", "Baidu Box App", "Baidu Box App Lite", "Baidu Input", "Cortana", "Daum", "General Motors",
    "Google Drive", "Google Gemini", "Google Go", "Google Lens", "Google Maps", "Google News", "Google Photos",
    "Google Play Newsstand", "Google Plus", "Google Podcasts", "Google Search App", "SogouSearch App", "Yahoo",
    "Yahoo Hong Kong", "Yahoo Mail", "Yahoo OneSearch", "Yahoo Search", "Yahoo! Japan", "Yahoo! Mail", "Yandex",
    "Yandex AI", "Yandex Music",
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
    title: str | None  # the title of the item's earliest counted titled hit (rule 8)
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
) -> CounterResult:
    """COUNTER item and title metrics of ``rows`` (see the module docstring for the rules).

    ``rules``: an :class:`ItemRules` or the path of a rules YAML file. ``robots`` / ``machines``:
    the robot and machine patterns (default COUNTER's, see rule 2); ``extra_robots``: more robot
    patterns. ``dates``: a date (or ``YYYY-MM-DD``) or a collection of them to count; other dates
    only serve as double-click context. The count is columnar: integer codes sorted in memory, no
    Python object per row.
    """
    if not isinstance(rules, ItemRules):
        rules = load_rules(rules)
    robots, machines, extra_robots = tuple(robots), tuple(machines), tuple(extra_robots)
    classify = AgentClassifier(robots + extra_robots, machines)
    wanted = _wanted_dates(dates)
    result = _count(PretableColumns.of(rows), rules, classify, wanted, double_click_seconds)
    result.robots_list = describe_robot_lists(robots, machines, extra_robots)
    return result


# -- cells ---------------------------------------------------------------------------------------
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


# -- columns -------------------------------------------------------------------------------------
NO_TIME = int(np.iinfo(np.int64).min)  # serverTime missing or not a time
_FIRST_SECOND = (dt.date(1, 1, 1).toordinal() - _EPOCH_ORDINAL) * 86400  # datetime's range: a time
_LAST_SECOND = (dt.date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL) * 86400 + 86399  # outside is not a time
_BATCH_ROWS = 1 << 16  # Python rows turned into columns at a time
_TIME_UNITS = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}
_TEXT_COLUMNS = ("browserName", "browserVersion", "ip", "actionName")
_CODE = np.int32  # a text column's codes: fewer than 2**31 distinct texts in a pretable
_INDEX = np.int32  # row numbers, user numbers, hit numbers: fewer than 2**31 rows


class _Factorizer:
    """Codes for cells of one text column: each distinct raw text is normalised once (:func:`_text`),
    equal normalised texts share a code, a missing value is -1. ``values``: the texts by code."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.index: dict[str, int] = {v: i for i, v in enumerate(values)}
        self._raw: dict[str, int] = {}

    def code(self, value) -> int:
        if value.__class__ is str:
            code = self._raw.get(value)
            if code is None:
                code = self._raw[value] = self._code(_text(value))
            return code
        return self._code(_text(value))

    def _code(self, text: str | None) -> int:
        if text is None:
            return -1
        code = self.index.get(text)
        if code is None:
            code = self.index[text] = len(self.index)
        return code

    def codes(self, values) -> np.ndarray:
        return np.fromiter(map(self.code, values), dtype=_CODE, count=len(values))

    @property
    def values(self) -> list[str]:
        return list(self.index)


@dataclass(frozen=True, eq=False)  # arrays: no element-wise ==
class TextColumn:
    """A factorised text column: ``values[codes[i]]`` is row i's text (stripped, non-empty), -1 a
    missing value."""

    codes: np.ndarray  # int32, one per row
    values: list[str]

    @classmethod
    def of_values(cls, values) -> TextColumn:
        f = _Factorizer()
        return cls(f.codes(values), f.values)

    @classmethod
    def of_arrow(cls, array) -> TextColumn:
        """From a pyarrow (chunked) array of strings or dictionary-encoded strings; other types
        through their Python values, as :func:`_text` reads them."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(array, pa.Array):
            array = pa.chunked_array([array], type=array.type)
        kind = array.type
        if pa.types.is_dictionary(kind) and not _is_text(kind.value_type):
            array, kind = array.cast(kind.value_type), kind.value_type
        if pa.types.is_null(kind) or len(array) == 0:
            return cls(np.full(len(array), -1, dtype=_CODE), [])
        if _is_text(kind):
            array = pc.dictionary_encode(array)  # one hash pass; the chunks share one dictionary
        elif not pa.types.is_dictionary(kind):
            return cls.of_values(array.to_pylist())
        array = array.unify_dictionaries()
        dictionary = array.chunks[0].dictionary
        f = _Factorizer()
        remap = np.append(f.codes(dictionary.to_pylist()), _CODE(-1))  # a null index -> -1
        indices = pa.chunked_array([c.indices for c in array.chunks]).fill_null(len(dictionary))
        return cls(remap[indices.to_numpy()], f.values)

    def take(self, rows: np.ndarray) -> TextColumn:
        return TextColumn(self.codes[rows], self.values)

    def concat(self, other: TextColumn) -> TextColumn:
        f = _Factorizer(self.values)
        remap = np.append(f.codes(other.values), _CODE(-1))
        return TextColumn(np.concatenate([self.codes, remap[other.codes]]), f.values)


def _is_text(kind) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or (
        hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind))


def _checked(t: int | None) -> int:
    return NO_TIME if t is None or not _FIRST_SECOND <= t <= _LAST_SECOND else t


def _times_of_values(values, memo: dict[str, int] | None = None) -> np.ndarray:
    """serverTime cells (text, datetime, anything) as seconds since 1970, :data:`NO_TIME` when not
    a time; a text is parsed once (``memo``)."""
    memo = {} if memo is None else memo
    out = []
    for value in values:
        if value.__class__ is str:
            t = memo.get(value)
            if t is None:
                t = memo[value] = _checked(_epoch(value))
        else:
            t = _checked(_epoch(value))
        out.append(t)
    return np.array(out, dtype=np.int64)


def _times_of_arrow(array) -> np.ndarray:
    import pyarrow as pa

    if isinstance(array, pa.Array):
        array = pa.chunked_array([array], type=array.type)
    kind = array.type
    if pa.types.is_timestamp(kind):  # tz-aware: the values are UTC; naive: taken as UTC
        raw = array.cast(pa.int64()).fill_null(NO_TIME).to_numpy()
        seconds = np.floor_divide(raw, _TIME_UNITS[kind.unit])
        seconds[(raw == NO_TIME) | (seconds < _FIRST_SECOND) | (seconds > _LAST_SECOND)] = NO_TIME
        return seconds
    if _is_text(kind) or (pa.types.is_dictionary(kind) and _is_text(kind.value_type)):
        texts = TextColumn.of_arrow(array)  # parse each distinct text once
        remap = np.append(_times_of_values(texts.values), NO_TIME)
        return remap[texts.codes]
    return _times_of_values(array.to_pylist())


@dataclass(frozen=True, eq=False)  # arrays: no element-wise ==
class PretableColumns:
    """A pretable as columns, what :func:`compute` counts: ``server_time`` in seconds since
    1970-01-01 (UTC, or the site's local time as the daily step passes it; :data:`NO_TIME` for a
    missing value or one that is not a time), the four text columns factorised
    (:class:`TextColumn`), and how many input rows were not rows at all (``invalid_shape``).
    Latitude and longitude are not kept: no rule uses them."""

    server_time: np.ndarray
    browser_name: TextColumn
    browser_version: TextColumn
    ip: TextColumn
    action_name: TextColumn
    invalid_shape: int = 0

    def __len__(self) -> int:
        return len(self.server_time)

    @classmethod
    def of(cls, rows) -> PretableColumns:
        """Whatever :func:`compute` accepts (see the module docstring), as columns."""
        if isinstance(rows, PretableColumns):
            return rows
        if hasattr(rows, "itertuples") and hasattr(rows, "columns"):
            return cls.of_frame(rows)
        if hasattr(rows, "schema") and hasattr(rows, "column_names"):
            return cls.of_arrow(rows)
        return cls.of_rows(rows)

    @classmethod
    def of_rows(cls, rows: Iterable) -> PretableColumns:
        """From tuples/lists in :data:`COLUMNS` order or dicts; anything else is a row of the wrong
        shape (counted, not raised). Read in batches, so only a batch of Python rows is alive."""
        texts = [_Factorizer() for _ in _TEXT_COLUMNS]
        memo: dict[str, int] = {}
        times: list[np.ndarray] = []
        codes: list[list[np.ndarray]] = [[] for _ in _TEXT_COLUMNS]
        batch: list[tuple] = []
        bad = 0

        def flush() -> None:
            if batch:
                columns = list(zip(*batch))
                times.append(_times_of_values(columns[0], memo))
                for j, f in enumerate(texts):
                    codes[j].append(f.codes(columns[j + 1]))
                batch.clear()

        for row in rows:
            if isinstance(row, dict):
                get = row.get
                batch.append((get("serverTime"), get("browserName"), get("browserVersion"), get("ip"),
                              get("actionName")))
            elif isinstance(row, (tuple, list)) and len(row) == 7:
                batch.append((row[0], row[1], row[2], row[3], row[6]))
            else:
                bad += 1
                continue
            if len(batch) >= _BATCH_ROWS:
                flush()
        flush()

        def joined(parts: list[np.ndarray], dtype) -> np.ndarray:
            return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

        return cls(joined(times, np.int64), *(TextColumn(joined(c, _CODE), f.values) for c, f in zip(codes, texts)),
                   invalid_shape=bad)

    @classmethod
    def of_frame(cls, frame) -> PretableColumns:
        """From a pandas DataFrame with the :data:`COLUMNS` (more columns are ignored)."""
        import pandas as pd

        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(f"the pretable DataFrame lacks column{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}; it needs {', '.join(COLUMNS)}")
        time = frame["serverTime"]
        if pd.api.types.is_datetime64_any_dtype(time.dtype):
            raw = np.asarray(time.array.asi8, dtype=np.int64)  # UTC when tz-aware; NaT is int64's minimum
            unit = time.dtype.unit if isinstance(time.dtype, pd.DatetimeTZDtype) else np.datetime_data(time.dtype)[0]
            seconds = np.floor_divide(raw, _TIME_UNITS[unit])
            ok = (raw != NO_TIME) & (seconds >= _FIRST_SECOND) & (seconds <= _LAST_SECOND)
            times = np.where(ok, seconds, NO_TIME)
        else:
            times = _times_of_values(list(time))
        texts = []
        for name in _TEXT_COLUMNS:
            column = frame[name]
            if pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
                try:
                    import pyarrow as pa

                    texts.append(TextColumn.of_arrow(pa.array(column, type=pa.string(), from_pandas=True)))
                    continue
                except (ValueError, TypeError, UnicodeError, pa.ArrowException):  # e.g. a lone surrogate
                    pass
            texts.append(TextColumn.of_values(list(column)))  # the cells as itertuples gives them
        return cls(times, *texts)

    @classmethod
    def of_arrow(cls, table) -> PretableColumns:
        """From a pyarrow Table or RecordBatch with serverTime (a timestamp, or text) and the four
        text columns (strings, dictionary-encoded or not)."""
        names = table.column_names
        missing = [c for c in ("serverTime",) + _TEXT_COLUMNS if c not in names]
        if missing:
            raise InputError(f"the pretable table lacks column{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}; it needs {', '.join(COLUMNS)}")
        return cls(_times_of_arrow(table.column("serverTime")),
                   *(TextColumn.of_arrow(table.column(name)) for name in _TEXT_COLUMNS))

    @classmethod
    def read_parquet(cls, path: str | os.PathLike, row_groups: Iterable[int] | None = None) -> PretableColumns:
        """The pretable's Parquet form (``row_groups``: those only), read a column at a time and the
        text columns as stored, dictionary-encoded: at most one column is held as arrow data, and
        no string is made per row. Raises what pyarrow raises (OSError, ArrowException)."""
        import pyarrow.parquet as pq

        source = pq.ParquetFile(path, read_dictionary=list(_TEXT_COLUMNS), memory_map=True)
        groups = list(range(source.num_row_groups) if row_groups is None else row_groups)

        def column(name: str):
            return source.read_row_groups(groups, columns=[name], use_threads=False).column(0)

        return cls(_times_of_arrow(column("serverTime")), *(TextColumn.of_arrow(column(name)) for name in _TEXT_COLUMNS))

    def take(self, rows: np.ndarray) -> PretableColumns:
        """The rows selected by ``rows`` (a boolean mask or indices); ``invalid_shape`` becomes 0."""
        return PretableColumns(self.server_time[rows], self.browser_name.take(rows),
                               self.browser_version.take(rows), self.ip.take(rows), self.action_name.take(rows))

    def concat(self, other: PretableColumns) -> PretableColumns:
        return PretableColumns(np.concatenate([self.server_time, other.server_time]),
                               self.browser_name.concat(other.browser_name),
                               self.browser_version.concat(other.browser_version),
                               self.ip.concat(other.ip), self.action_name.concat(other.action_name),
                               self.invalid_shape + other.invalid_shape)

    def with_times(self, server_time: np.ndarray) -> PretableColumns:
        """The same rows with other serverTimes (e.g. moved into a timezone); a time outside the
        datetime range becomes :data:`NO_TIME`."""
        ok = (server_time != NO_TIME) & (server_time >= _FIRST_SECOND) & (server_time <= _LAST_SECOND)
        return PretableColumns(np.where(ok, server_time, NO_TIME), self.browser_name, self.browser_version,
                               self.ip, self.action_name, self.invalid_shape)


# -- the count -----------------------------------------------------------------------------------
def _count(cols: PretableColumns, rules: ItemRules, classify: AgentClassifier, wanted: frozenset[str] | None,
           window: int) -> CounterResult:
    """The rules of the module docstring on columns. The rows are narrowed step by step (``rows``:
    indices into ``cols``): valid, human, matched; a matched hit is then counted unless it is a
    removed double click or on a date not asked for. Arrays are dropped as soon as they are dead."""
    stats = CounterStats(rows_read=len(cols) + cols.invalid_shape, invalid_shape=cols.invalid_shape)
    rows = _valid_rows(cols, stats)
    rows, agent, agents = _human_rows(cols, rows, classify, stats)
    rows, agent, hit, distinct_hits = _matched_rows(cols, rows, agent, rules, stats)
    stats.rows_matched = m = len(rows)
    if m == 0:
        return CounterResult([], [], stats)
    t = cols.server_time[rows]
    user, n_users = _users(cols.ip, rows, agent, agents)
    del rows, agent
    hits = _Hits(distinct_hits)
    hit_rank = hits.rank[hit]
    group = user * np.int64(hits.n_click_keys) + hits.click_key[hit]  # who clicked what (§7.2)
    removed = _double_clicks(group, n_users * hits.n_click_keys, t, hit_rank, len(hits.hits), window)

    if wanted is None:
        inside = np.ones(m, dtype=bool)
    else:
        inside = np.isin(t // 86400, np.array(sorted(_day(d) for d in wanted), dtype=np.int64))
    stats.hits_outside_dates = m - _nonzero(inside)
    stats.double_clicks_removed = _nonzero(removed & inside)
    counted = np.flatnonzero(~removed & inside)
    del removed, inside
    stats.hits_counted = len(counted)
    if not len(counted):
        return CounterResult([], [], stats)
    del hit_rank, group
    result = _tables(hits, user[counted], n_users, hit[counted], t[counted], stats)
    stats.items, stats.titles = len(result.items), len(result.titles)
    return result


def _tables(hits: _Hits, user: np.ndarray, n_users: int, hit: np.ndarray, t: np.ndarray,
            stats: CounterStats) -> CounterResult:
    """Rules 6 and 7 on the counted hits: the item and title tables. A session (§7.3) is a user and
    an hour since 1970, which fixes the date."""
    item, title, request = hits.item[hit], hits.title[hit], hits.request[hit]
    day, hour = t // 86400, t // 3600
    del hit
    first_day = int(day.min())
    day = (day - first_day).astype(np.int32)
    hour = (hour - hour.min()).astype(np.int32)
    session = ((user, n_users), (hour, int(hour.max()) + 1))
    stats.sessions = _n_distinct(_pack(*session))
    n_items, n_titles, n_days = len(hits.items), max(len(hits.titles), 1), int(day.max()) + 1
    item_, title_ = (item, n_items), (title, n_titles)

    item_group, item_keys = _factorize(day * np.int64(n_items) + item, n_days * n_items)  # by date, then item
    n_i = len(item_keys)
    item_metrics = (
        np.bincount(item_group, minlength=n_i),
        _distinct_per_group(item_group, n_i, *session, item_),
        np.bincount(item_group[request], minlength=n_i),
        _distinct_per_group(item_group, n_i, *session, item_, where=request),
    )
    item_title = _item_titles(hits, item_group, n_i, item, title, t)
    del item_group, t

    titled = title >= 0
    title_group = np.full(len(title), -1, dtype=np.int64)
    title_group[titled], title_keys = _factorize(day[titled] * np.int64(n_titles) + title[titled], n_days * n_titles)
    n_t = len(title_keys)
    titled_request = titled & request
    title_metrics = (
        np.bincount(title_group[titled], minlength=n_t),
        _distinct_per_group(title_group, n_t, *session, item_, title_, where=titled),
        np.bincount(title_group[titled_request], minlength=n_t),
        _distinct_per_group(title_group, n_t, *session, item_, title_, where=titled_request),
        _distinct_per_group(title_group, n_t, *session, title_, where=titled),
        _distinct_per_group(title_group, n_t, *session, title_, where=titled_request),
    )

    items = [ItemMetrics(_date_text(first_day + k // n_items), hits.items[k % n_items],
                         hits.titles[ti] if ti >= 0 else None, *values)
             for k, ti, *values in zip(item_keys.tolist(), item_title.tolist(), *(a.tolist() for a in item_metrics))]
    titles = [TitleMetrics(_date_text(first_day + k // n_titles), hits.titles[k % n_titles], *values)
              for k, *values in zip(title_keys.tolist(), *(a.tolist() for a in title_metrics))]
    return CounterResult(items, titles, stats)


def _valid_rows(cols: PretableColumns, stats: CounterStats) -> np.ndarray:
    """Rule 1: the rows with an actionName, a time and an ip (checked in that order)."""
    n = len(cols)
    live = cols.action_name.codes >= 0
    stats.invalid_no_action = n - _nonzero(live)
    live &= cols.server_time != NO_TIME
    stats.invalid_time = n - stats.invalid_no_action - _nonzero(live)
    has_ip = cols.ip.codes >= 0
    stats.invalid_no_ip = _nonzero(live & ~has_ip)
    live &= has_ip
    stats.rows_invalid = stats.invalid_no_action + stats.invalid_time + stats.invalid_no_ip + stats.invalid_shape
    return np.flatnonzero(live).astype(_INDEX)


def _human_rows(cols: PretableColumns, rows: np.ndarray, classify: AgentClassifier, stats: CounterStats):
    """Rule 2: the rows that are not robots or machines, decided once per distinct (browserName,
    browserVersion); with each row's agent (a number) and the agents' texts."""
    names, versions = cols.browser_name.values, cols.browser_version.values
    width = len(versions) + 1
    key = (cols.browser_name.codes[rows].astype(np.int64) + 1) * width + cols.browser_version.codes[rows] + 1
    agent, agent_keys = _factorize(key, bound=(len(names) + 1) * width)
    agent = agent.astype(_INDEX)
    del key
    agents: list[tuple[str, str]] = []
    kinds = np.zeros(len(agent_keys), dtype=np.int8)  # 0 human, 1 robot, 2 machine
    for j, key in enumerate(agent_keys.tolist()):
        name, version = divmod(key, width)
        agents.append((names[name - 1] if name else "", versions[version - 1] if version else ""))
        if name:
            kind = classify(*agents[-1])
            if kind is not None:
                kinds[j] = 2 if kind == "machine" else 1
    kind_of_row = kinds[agent]
    stats.rows_robot = _nonzero(kind_of_row)
    stats.rows_machine = _nonzero(kind_of_row == 2)
    human = kind_of_row == 0
    return rows[human], agent[human], agents


def _matched_rows(cols: PretableColumns, rows: np.ndarray, agent: np.ndarray, rules: ItemRules,
                  stats: CounterStats):
    """Rule 3: the rows whose actionName is an item, matched once per distinct actionName; with
    each row's hit (a number) and the distinct hits (item, content type, format, title, request)."""
    actions = cols.action_name.values
    action = cols.action_name.codes[rows]
    hit_of_action = np.full(len(actions), -1, dtype=_INDEX)
    hit_index: dict[tuple, int] = {}
    for code in np.flatnonzero(np.bincount(action, minlength=len(actions))).tolist():
        hit = rules.match(actions[code])
        if hit is not None:
            key = (hit.item, hit.content_type or "", hit.format or "", hit.title or "", hit.is_request)
            hit_of_action[code] = hit_index.setdefault(key, len(hit_index))
    hit = hit_of_action[action]
    unknown = hit < 0
    stats.rows_unknown_item = _nonzero(unknown)
    stats.unknown_examples = [actions[c] for c in _first_distinct(action[unknown], _MAX_EXAMPLES)]
    matched = ~unknown
    return rows[matched], agent[matched], hit[matched], list(hit_index)


class _Hits:
    """The distinct hits (item, content type, format, title, request) and their parts by hit
    number: ``item`` and ``title`` (-1: none) as ranks of the sorted texts ``items`` and
    ``titles``, ``request``, ``click_key`` (item, content type, format: what a double click
    repeats) and ``rank``, the hit's place when the hits sort as tuples; ``several_titles``: the
    items with hits under more than one title."""

    def __init__(self, hits: list[tuple]) -> None:
        self.hits = hits
        self.items = sorted({h[0] for h in hits})
        self.titles = sorted({h[3] for h in hits if h[3]})
        item_code = {v: i for i, v in enumerate(self.items)}
        title_code = {v: i for i, v in enumerate(self.titles)}
        self.item = np.array([item_code[h[0]] for h in hits], dtype=_INDEX)
        self.title = np.array([title_code[h[3]] if h[3] else -1 for h in hits], dtype=_INDEX)
        self.request = np.array([h[4] for h in hits], dtype=bool)
        click_keys: dict[tuple, int] = {}
        self.click_key = np.array([click_keys.setdefault(h[:3], len(click_keys)) for h in hits], dtype=np.int64)
        self.n_click_keys = len(click_keys)
        self.rank = np.empty(len(hits), dtype=_INDEX)
        self.rank[sorted(range(len(hits)), key=hits.__getitem__)] = np.arange(len(hits))
        titles_of_item: dict[int, set[str]] = {}
        for h in hits:
            if h[3]:
                titles_of_item.setdefault(item_code[h[0]], set()).add(h[3])
        # the items seen under more than one title (their title is the earliest counted one, rule 8)
        self.several_titles = sorted(i for i, titles in titles_of_item.items() if len(titles) > 1)


def _double_clicks(group: np.ndarray, n_groups: int, t: np.ndarray, hit_rank: np.ndarray, n_hits: int,
                   window: int) -> np.ndarray:
    """Rule 5: which hits are removed. Per group (user, click key) in time order, a click is removed
    when the group's next click is at most ``window`` seconds later. Ties of time are ordered as
    the hits' texts sort, as the row-wise version met them."""
    m = len(group)
    order = _order((group, n_groups), (t - t.min(), int(t.max() - t.min()) + 1), (hit_rank, n_hits))
    grouped = group[order]
    removed_sorted = np.zeros(m, dtype=bool)
    removed_sorted[:-1] = grouped[1:] == grouped[:-1]
    del grouped
    removed_sorted[:-1] &= np.diff(t[order]) <= window
    removed = np.empty(m, dtype=bool)
    removed[order] = removed_sorted
    return removed


def _nonzero(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))


def _factorize(keys: np.ndarray, bound: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(code of each key, the distinct keys ascending): code i means ``distinct[i]``, int64 both.

    ``bound``: every key is in [0, bound); when that range is small (at most twice the keys), a
    table of it gives the codes in one pass. Otherwise the keys are sorted and searched."""
    if bound is not None and bound <= 2 * len(keys) + (1 << 16):
        present = np.zeros(bound, dtype=bool)
        present[keys] = True
        code_of = np.cumsum(present, dtype=np.int64)
        code_of -= 1
        return code_of[keys], np.flatnonzero(present)
    distinct = _sorted_distinct(np.sort(keys))
    return np.searchsorted(distinct, keys), distinct


def _sorted_distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of an ascending array."""
    return ordered[_starts(ordered)]


def _starts(ordered: np.ndarray) -> np.ndarray:
    """Where a new value starts in an ascending array (a mask)."""
    new = np.empty(len(ordered), dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    return new


_PACK_LIMIT = 1 << 62


def _pack(*parts: tuple[np.ndarray, int]) -> np.ndarray:
    """One int64 key per row that sorts and groups as the tuple of ``parts`` ((values in [0, size),
    size) each). When the sizes' product would overflow, the parts packed so far are first replaced
    by their rank (at most the number of rows)."""
    key, size = parts[0][0].astype(np.int64), parts[0][1]
    for values, bound in parts[1:]:
        if size * bound >= _PACK_LIMIT:
            key, size = _rank(key)
            if size * bound >= _PACK_LIMIT:
                values, bound = _rank(values)
        key *= bound
        key += values
        size *= bound
    return key


def _rank(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Each key's rank among the distinct keys (ascending), and their number."""
    codes, distinct = _factorize(keys)
    return codes, len(distinct)


def _order(*parts: tuple[np.ndarray, int]) -> np.ndarray:
    """Indices that sort the rows by the tuple of ``parts`` (see :func:`_pack`)."""
    return np.argsort(_pack(*parts))


def _distinct_per_group(group: np.ndarray, n_groups: int, *parts: tuple[np.ndarray, int],
                        where: np.ndarray | None = None) -> np.ndarray:
    """Per group, the number of distinct tuples of ``parts`` among the rows (``where``).

    The keys (group, parts...) are sorted: the groups then come in ascending order, each as many
    times as it has rows, and a key unlike the one before is a new distinct tuple of its group."""
    if where is not None:
        group, parts = group[where], tuple((values[where], size) for values, size in parts)
    if not len(group):
        return np.zeros(n_groups, dtype=np.int64)
    key = _pack((group, n_groups), *parts)
    key.sort()
    sizes = np.bincount(group, minlength=n_groups)
    return np.bincount(np.repeat(np.arange(n_groups), sizes)[_starts(key)], minlength=n_groups)


def _n_distinct(keys: np.ndarray) -> int:
    return _nonzero(_starts(np.sort(keys)))


def _first_distinct(codes: np.ndarray, k: int) -> list[int]:
    """The first ``k`` distinct values of ``codes``, in order of first appearance."""
    size = 4 * k
    while True:
        head = codes[:size]
        order = np.argsort(head, kind="stable")  # equal values: the first one first
        firsts = order[_starts(head[order])]
        if len(firsts) >= k or size >= len(codes):
            return head[np.sort(firsts)[:k]].tolist()
        size *= 8


def _users(ip: TextColumn, rows: np.ndarray, agent: np.ndarray, agents: list[tuple[str, str]]):
    """Rule 4: user numbers in the order of the texts (canonical ip, browserName, browserVersion),
    as the row-wise version sorted them, and their count; the ip is made canonical once per
    distinct ip."""
    codes = ip.codes[rows]
    seen = np.flatnonzero(np.bincount(codes, minlength=len(ip.values))).tolist()
    canonical = [_ip(v) if ":" in v else v for v in (ip.values[c] for c in seen)]
    rank = {v: i for i, v in enumerate(sorted(set(canonical)))}
    ip_rank = np.zeros(len(ip.values), dtype=np.int64)
    ip_rank[seen] = [rank[v] for v in canonical]
    agent_rank = np.empty(len(agents), dtype=np.int64)
    agent_rank[sorted(range(len(agents)), key=agents.__getitem__)] = np.arange(len(agents))
    user, n_users = _rank(_pack((ip_rank[codes], len(rank)), (agent_rank[agent], len(agents))))
    return user.astype(_INDEX), n_users


def _item_titles(hits: _Hits, item_group: np.ndarray, n_groups: int, item: np.ndarray, title: np.ndarray,
                 t: np.ndarray) -> np.ndarray:
    """The title of each item row (-1: none): the title of the item's earliest counted hit that has
    one, hits of the same second going to the title that sorts first (see "Item titles" in the
    module docstring). Only an item with several titles needs the sort."""
    first = np.full(n_groups, -1, dtype=np.int64)
    titled = title >= 0
    first[item_group[titled]] = title[titled]  # right for every item with one title
    if not hits.several_titles:
        return first
    rows = titled & np.isin(item, np.array(hits.several_titles, dtype=item.dtype))
    group, candidate, t = item_group[rows], title[rows], t[rows]
    order = np.lexsort((candidate, t, group))  # by group, then time, then title (a rank of the sorted texts)
    firsts = order[_starts(group[order])]
    first[group[firsts]] = candidate[firsts]
    return first
