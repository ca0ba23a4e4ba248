"""A usage report over a window of days, from the per-day aggregates only (never raw logs).

Metrics follow memex's analytics file (``metric, count, description``); see :data:`DESCRIPTIONS`.
How each is combined over days:

* additive counts (page views, downloads, events, sessions, bots, ignored lines, COUNTER totals,
  Opencast actions) are sums of the days' counts — sessions end at local midnight, so they add up;
* visitors are the *distinct* hashed visitor ids over the window (a union, not a sum);
* new visitors are those whose first day in the site's history (:mod:`.first_seen`) is inside
  the window; returning visitors are the others.

Days of the window without an aggregate are listed in ``missing_days`` and count as nothing;
``history_missing_days`` counts earlier days without one (visitors only seen then would be
wrongly counted as new). Days before the site's first day are outside the site's life, not missing.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..vocabulary import DAY_QUEUE, DAY_PARTIAL
from .first_seen import day_number, load_first_seen
from .settings import UsageSettings
from .sources import COUNTER_METRICS, counter_items_path, opencast_day_counts, read_counter_items
from .store import day_path, read_day, usage_dir
from .windows import Window

IGNORED_KEYS = ("static", "http_errors", "http_redirects", "filtered")

DESCRIPTIONS = {
    "days": "days in the window (site-local calendar days, both ends included)",
    "days_with_data": "days of the window with a usage aggregate (the others are listed as missing)",
    "visitors": "distinct visitors with at least one tracked hit (user id, else IP + user agent)",
    "new_visitors": "visitors first seen inside the window (absent from every earlier day)",
    "returning_visitors": "visitors of the window also seen on an earlier day",
    "sessions": "visits: a visitor's hits with no gap over 30 minutes, ending at local midnight",
    "pageviews": "page views delivered to Matomo",
    "downloads": "downloads delivered to Matomo",
    "events": "events delivered to Matomo (e.g. video player actions)",
    "bots": "hits from bots: ignored by the import, plus those tracked with enable_bots",
    "ignored_hits": "log lines not tracked: bots, static files, HTTP errors, redirects, filtered",
    "ignored_static": "static-file requests (images, CSS, JS) not tracked",
    "ignored_http_errors": "HTTP error responses (4xx, 5xx) not tracked",
    "ignored_http_redirects": "HTTP redirects (3xx except 304) not tracked",
    "ignored_filtered": "lines excluded by path, host or user-agent filters",
    "invalid_lines": "log lines that could not be parsed",
    "counter_total_item_investigations": "COUNTER Total_Item_Investigations summed over the days",
    "counter_unique_item_investigations": "COUNTER Unique_Item_Investigations summed over the days",
    "counter_total_item_requests": "COUNTER Total_Item_Requests summed over the days",
    "counter_unique_item_requests": "COUNTER Unique_Item_Requests summed over the days",
    "opencast_actions": "Opencast user actions harvested for the days (all sites of the Opencast server)",
}
_COMPLETE_NOT = (DAY_QUEUE, DAY_PARTIAL)


@dataclass(frozen=True)
class Metric:
    metric: str
    count: int
    description: str


@dataclass
class UsageReport:
    site_id: int
    site_key: str
    timezone: str
    window: Window
    metrics: list[Metric] = field(default_factory=list)
    top_pages: list[tuple[str, int]] = field(default_factory=list)
    top_downloads: list[tuple[str, int]] = field(default_factory=list)
    top_counter_items: list[tuple] = field(default_factory=list)  # (item, title, *COUNTER_METRICS)
    opencast_action_types: list[tuple[str, int]] = field(default_factory=list)
    daily: list[dict] = field(default_factory=list)  # one row per day with data
    missing_days: list[dt.date] = field(default_factory=list)
    incomplete_days: list[dt.date] = field(default_factory=list)  # built while the day was partial
    counter_missing_days: list[dt.date] = field(default_factory=list)
    opencast_missing_days: list[dt.date] = field(default_factory=list)
    history_missing_days: int = 0

    def value(self, name: str) -> int | None:
        for m in self.metrics:
            if m.metric == name:
                return m.count
        return None

    def as_dict(self) -> dict:
        return {m.metric: m.count for m in self.metrics}


def _top(counts: dict[str, int], n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _existing_days(settings, site) -> set[str]:
    try:
        return {n[:10] for n in os.listdir(usage_dir(settings, site)) if len(n) == 18 and n.endswith(".parquet")}
    except FileNotFoundError:
        return set()


def compute_report(settings, site, window: Window, *, top: int = 100, usage: UsageSettings | None = None) -> UsageReport:
    """Sum the window's day aggregates (and COUNTER / Opencast outputs) into a :class:`UsageReport`;
    ``usage``: where the Opencast actions are (default :class:`UsageSettings`: the harvester's default)."""
    report = UsageReport(site.id, site.key, site.timezone, window)
    days = [d for d in window.days() if d >= site.start_date]
    totals: Counter = Counter()
    pages: dict[str, int] = defaultdict(int)
    downloads: dict[str, int] = defaultdict(int)
    vid_chunks: list[np.ndarray] = []
    salts: set[str] = set()
    for day in days:
        path = day_path(settings, site, day)
        if not path.exists():
            report.missing_days.append(day)
            continue
        agg = read_day(path)
        salts.add(agg.meta.get("salt_id"))
        counts = agg.counts
        totals.update({k: int(v) for k, v in counts.items()})
        for key, n in agg.pages.items():
            pages[key] += n
        for key, n in agg.downloads.items():
            downloads[key] += n
        vid_chunks.append(agg.vids)
        if agg.meta.get("day_status") in _COMPLETE_NOT or agg.meta.get("missing_files"):
            report.incomplete_days.append(day)
        report.daily.append({"day": day.isoformat(), "visitors": int(counts.get("visitors", 0)),
                             "sessions": int(counts.get("sessions", 0)), "pageviews": int(counts.get("pageviews", 0)),
                             "downloads": int(counts.get("downloads", 0)), "events": int(counts.get("events", 0)),
                             "status": agg.meta.get("day_status") or ""})
    if len(salts) > 1:
        raise InputError(f"the day aggregates of {window} were hashed with different salts; rebuild them "
                         f"(delete {usage_dir(settings, site)}/*.parquet and run the report again)")

    visitors = np.unique(np.concatenate(vid_chunks)) if vid_chunks else np.empty(0, np.int64)
    new = 0
    if len(visitors):
        first_days = load_first_seen(settings, site).first_days(visitors)
        new = int(np.count_nonzero(first_days >= day_number(window.first_day)))
    existing = _existing_days(settings, site)
    history = max(0, (window.first_day - site.start_date).days)
    report.history_missing_days = sum(
        1 for i in range(history) if (site.start_date + dt.timedelta(days=i)).isoformat() not in existing)

    ignored = {k: totals.get(f"ignored_{k}", 0) for k in IGNORED_KEYS}
    bots = totals.get("ignored_bots", 0) + totals.get("bots_tracked", 0)
    values = {
        "days": len(window),
        "days_with_data": len(days) - len(report.missing_days),
        "visitors": int(len(visitors)),
        "new_visitors": new,
        "returning_visitors": int(len(visitors)) - new,
        "sessions": totals.get("sessions", 0),
        "pageviews": totals.get("pageviews", 0),
        "downloads": totals.get("downloads", 0),
        "events": totals.get("events", 0),
        "bots": bots,
        "ignored_hits": totals.get("ignored_bots", 0) + sum(ignored.values()),
        **{f"ignored_{k}": v for k, v in ignored.items()},
        "invalid_lines": totals.get("ignored_invalid", 0),
    }
    _add_counter(settings, site, days, report, values, top)
    _add_opencast(settings, days, report, values, (usage or UsageSettings()).opencast_output)
    report.metrics = [Metric(name, int(count), DESCRIPTIONS[name]) for name, count in values.items()]
    report.top_pages = _top(pages, top)
    report.top_downloads = _top(downloads, top)
    return report


def _add_counter(settings, site, days, report: UsageReport, values: dict, top: int) -> None:
    """COUNTER totals and top items, when the site computes COUNTER metrics or tables exist."""
    items: dict[str, list] = {}
    present = 0
    for day in days:
        path = counter_items_path(settings, site, day)
        if not path.exists():
            report.counter_missing_days.append(day)
            continue
        present += 1
        for item, title, metrics in read_counter_items(path):
            row = items.get(item)
            if row is None:
                items[item] = [title, *metrics]
            else:
                row[0] = row[0] or title
                for i, v in enumerate(metrics, start=1):
                    row[i] += v
    if not present and getattr(getattr(site, "counter", None), "items", None) is None:
        report.counter_missing_days = []  # the site has no COUNTER metrics: nothing is missing
        return
    for i, name in enumerate(COUNTER_METRICS, start=1):
        values[f"counter_{name.lower()}"] = sum(row[i] for row in items.values())
    ranked = sorted(items.items(), key=lambda kv: (-kv[1][3], -kv[1][1], kv[0]))[:top]  # requests, then investigations
    report.top_counter_items = [(item, row[0], *row[1:]) for item, row in ranked]


def _add_opencast(settings, days, report: UsageReport, values: dict, output: str | None) -> None:
    types: Counter = Counter()
    present = 0
    for day in days:
        counts = opencast_day_counts(settings, day, output)
        if counts is None:
            report.opencast_missing_days.append(day)
            continue
        present += 1
        types.update(counts.get("types", {}))
    if not present:
        report.opencast_missing_days = []  # no Opencast harvest configured: not part of this report
        return
    values["opencast_actions"] = sum(types.values())
    report.opencast_action_types = sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))


__all__ = ["DESCRIPTIONS", "Metric", "UsageReport", "compute_report"]
