"""One site-day of COUNTER metrics: the day's pretable in, item and title tables out; the day
becomes Calculated.

Times are moved into the site's timezone first, so a day, its sessions (user + date + hour) and
the ``date`` column of the tables are the site's local day, as Matomo's reports and the Dagster
partitions are. The first minute of the next day's pretable, when it exists, takes part in
double-click filtering only: a click at 23:59:50 followed by one at 00:00:10 is one action,
counted on the next day as COUNTER says (the later click is kept).
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from ..errors import ConfigError, InputError
from ..pretable import pretable_paths, read_pretable_tsv
from ..vocabulary import DAY_CALCULATED, DAY_DONE, DAY_PRETABLE
from .items import load_rules
from .metrics import compute
from .output import write_result


@dataclass
class CounterDayResult:
    site_id: int
    day: str
    files: dict[str, str] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    totals: dict = field(default_factory=dict)
    top_items: list[tuple] = field(default_factory=list)
    robots_list: str = ""  # the robot and machine lists that excluded rows, with their version
    seconds: float = 0.0
    day_status: str = ""


def counter_dir(settings, site) -> Path:
    return Path(settings.home) / "counter" / site.key


def _local_rows(rows, tz):
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


def compute_counter_day(settings, ledger, site, day: dt.date) -> CounterDayResult:
    """Write ``counter/<site>/<day>-items.{tsv,parquet}`` (and ``-titles``) from the day's pretable."""
    if site.counter.items is None:
        raise ConfigError(f"site {site.key} has no COUNTER item rules; add counter: {{items: ...}} to its entry "
                          "in the sites file")
    tsv, _parquet = pretable_paths(settings, site, day)
    if not tsv.exists():
        raise InputError(f"{site.key} {day}: no pretable at {tsv}; materialise the pretable first")
    rules = load_rules(site.counter.items)
    tz = None if site.timezone == "UTC" else ZoneInfo(site.timezone)
    clock = time.perf_counter()
    rows = _local_rows(read_pretable_tsv(tsv), tz)
    next_tsv, _ = pretable_paths(settings, site, day + dt.timedelta(days=1))
    if next_tsv.exists():
        # Only the first minute matters for a double click across midnight; the pretable is not
        # sorted by time (Matomo's is by ip), so filter rather than stop early.
        limit = (day + dt.timedelta(days=1)).isoformat() + " 00:01"
        following = (r for r in _local_rows(read_pretable_tsv(next_tsv), tz) if r[0] is not None and r[0] < limit)
        rows = itertools.chain(rows, following)
    result = compute(rows, rules, dates=day.isoformat())
    folder = counter_dir(settings, site)
    folder.mkdir(parents=True, exist_ok=True)
    written = write_result(result, folder, day.isoformat())
    out = CounterDayResult(site_id=site.id, day=day.isoformat(), files={k: str(v) for k, v in written.items()},
                           stats=result.stats.as_dict(), robots_list=result.robots_list)
    out.totals = {
        "Total_Item_Investigations": sum(r.total_item_investigations for r in result.items),
        "Unique_Item_Investigations": sum(r.unique_item_investigations for r in result.items),
        "Total_Item_Requests": sum(r.total_item_requests for r in result.items),
        "Unique_Item_Requests": sum(r.unique_item_requests for r in result.items),
    }
    ranked = sorted(result.items, key=lambda r: (-r.total_item_investigations, r.item))[:10]
    out.top_items = [(r.item, r.title, r.total_item_investigations, r.unique_item_investigations,
                      r.total_item_requests, r.unique_item_requests) for r in ranked]
    out.seconds = round(time.perf_counter() - clock, 3)
    ledger.advance_day(site.id, day, DAY_CALCULATED, after=(DAY_PRETABLE, DAY_CALCULATED, DAY_DONE))
    out.day_status = ledger.day_status(site.id, day) or ""
    return out
