"""The row-wise COUNTER algorithm that :func:`analytics_ingest.counter.metrics.compute` replaced, kept
as the reference that the columnar one must equal (test_counter_equivalence.py).

A frozen copy of ``compute`` before the columnar rewrite: one Python pass over the rows
(``_collect``), the matched hits sorted by (user, time) in memory or in sorted runs on disk
(``_Sorter``), and a counting pass per user (``_count``). The parsing helpers (``_text``,
``_epoch``, ``_ip``), the robot matcher and the result types are shared with the module, so
this pins the counting rules, not the cell parsing. One rule changed in both since: an item's
title is its earliest counted titled hit's (rule 8), no longer the first hit in this count order
(users by ip text, then when a held click was let go), which made it depend on who the users were. Slow (about 140,000 rows/s); tests only.
Also the old day reader's timezone shift (``local_rows``), to compare whole days.
"""

from __future__ import annotations

import datetime as dt
import heapq
import os
import pickle
import sys
import tempfile
from collections.abc import Iterable, Iterator

from analytics_ingest.counter.items import ItemRules, load_rules
from analytics_ingest.counter.metrics import (
    _MAX_EXAMPLES,
    COLUMNS,
    DOUBLE_CLICK_SECONDS,
    MACHINES,
    ROBOTS,
    AgentClassifier,
    CounterResult,
    CounterStats,
    ItemMetrics,
    TitleMetrics,
    _date_text,
    _epoch,
    _ip,
    _text,
    _wanted_dates,
    describe_robot_lists,
)
from analytics_ingest.errors import InputError


def compute_reference(
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
    item_titles: dict[tuple[str, str], tuple[int, str]] = {}  # (date, item) -> (time, title) of its title
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
            row = items[(date, item)] = ItemMetrics(date, item, None)
        if title:  # the item's title: its earliest titled hit, a tie of seconds to the smallest title
            best = item_titles.get((date, item))
            if best is None or (t, title) < best:
                item_titles[(date, item)] = (t, title)
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

    for key, (_t, title) in item_titles.items():
        items[key].title = title
    item_rows = [items[k] for k in sorted(items)]
    title_rows = [titles[k] for k in sorted(titles)]
    stats.items, stats.titles = len(item_rows), len(title_rows)
    return CounterResult(item_rows, title_rows, stats)


def local_rows(rows, tz):
    """Pretable rows with serverTime moved from UTC into the site's local time."""
    if tz is None:
        yield from rows
        return
    cache: dict[str, str] = {}
    for row in rows:
        text = row[0]
        if text is None:
            yield row
            continue
        hour = text[:13]
        local_hour = cache.get(hour)
        if local_hour is None:
            try:
                utc = dt.datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=dt.timezone.utc)
            except ValueError:
                yield row
                continue
            local_hour = utc.astimezone(tz).strftime("%Y-%m-%d %H")
            if len(cache) > 10_000:
                cache.clear()
            cache[hour] = local_hour
        yield (local_hour + text[13:],) + tuple(row[1:])

