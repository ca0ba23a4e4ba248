"""One site-day of COUNTER metrics: the day's pretable in, item and title tables out; the day
becomes Calculated.

The pretable is read in its Parquet form (``<day>.parquet``, the text columns dictionary-encoded
as stored) into columns, and counted by :func:`~.metrics.compute` without a Python object per row.
The TSV form is read instead when there is no Parquet twin, or when the TSV is newer (a SciELO
pretable put there by hand).

Times are moved into the site's timezone first (by the UTC offset of each hour, so a half-hour
zone such as Asia/Kolkata is moved by its whole offset), so a day, its sessions (user + date +
hour) and the ``date`` column of the tables are the site's local day, as Matomo's reports and the
Dagster partitions are. The first minute of the next day's pretable, when it exists, takes part in
double-click filtering only: a click at 23:59:50 followed by one at 00:00:10 is one action,
counted on the next day as COUNTER says (the later click is kept).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..pretable import pretable_paths, read_pretable_tsv
from ..site_time import site_zone
from ..vocabulary import DAY_CALCULATED, DAY_DONE, DAY_PRETABLE
from .items import load_rules
from .metrics import NO_TIME, PretableColumns, _factorize, compute
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


def _pretable_file(tsv: Path, parquet: Path) -> Path | None:
    """The form to read: the Parquet twin unless the TSV is newer or alone; None when neither."""
    if parquet.exists() and (not tsv.exists() or parquet.stat().st_mtime >= tsv.stat().st_mtime):
        return parquet
    return tsv if tsv.exists() else None


def _read(path: Path, before_utc: int | None = None) -> PretableColumns:
    """A pretable file as columns. ``before_utc`` (seconds since 1970, UTC): the Parquet row groups
    that start at or after it are skipped (the caller filters the rows)."""
    if path.suffix != ".parquet":
        return PretableColumns.of_rows(read_pretable_tsv(path))
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        groups = None
        if before_utc is not None:
            metadata = pq.ParquetFile(path).metadata
            groups = [g for g in range(metadata.num_row_groups) if _starts_before(metadata.row_group(g), before_utc)]
        columns = PretableColumns.read_parquet(path, groups)
    except KeyError as exc:  # a column missing
        name = exc.args[0].decode() if isinstance(exc.args[0], bytes) else exc.args[0]
        raise InputError(f"pretable {path} has no column {name}; materialise the pretable again") from None
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read pretable {path}: {exc}; materialise the pretable again") from None
    pa.default_memory_pool().release_unused()  # hand the read's buffers back before the count needs memory
    return columns


def _starts_before(group, before_utc: int) -> bool:
    """Whether a row group may hold a serverTime before ``before_utc``: its minimum says (True
    when there are no statistics)."""
    for i in range(group.num_columns):
        column = group.column(i)
        if column.path_in_schema != "serverTime":
            continue
        stats = column.statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.min, dt.datetime):
            return True
        first = stats.min if stats.min.tzinfo else stats.min.replace(tzinfo=dt.timezone.utc)
        return first < dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=before_utc)
    return True


def _offset(tz, t: int) -> int:
    """The UTC offset of ``tz`` at ``t`` (seconds since 1970, UTC), in seconds."""
    try:
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=t)
        return int(moment.astimezone(tz).utcoffset().total_seconds())
    except (OverflowError, ValueError):
        return 0


def _to_local(columns: PretableColumns, tz) -> PretableColumns:
    """serverTime moved from UTC into ``tz``: the offset is looked up once per hour of the day."""
    if tz is None or not len(columns):
        return columns
    t = columns.server_time
    ok = t != NO_TIME
    hours = t[ok] // 3600
    if not len(hours):
        return columns
    first = int(hours.min())
    hours -= first
    code, seen = _factorize(hours, int(hours.max()) + 1)  # a day's rows span about 25 hours
    offsets = np.array([_offset(tz, (first + h) * 3600) for h in seen.tolist()], dtype=np.int64)
    local = t.copy()
    local[ok] += offsets[code]
    return columns.with_times(local)


def _earliest_utc(tz, local_seconds: int) -> int:
    """A UTC instant after every instant whose local time in ``tz`` is before ``local_seconds``."""
    if tz is None:
        return local_seconds
    nearby = [_offset(tz, local_seconds + k * 3600) for k in range(-48, 49)]
    return local_seconds - min(nearby) + 1


def compute_counter_day(settings, ledger, site, day: dt.date) -> CounterDayResult:
    """Write ``counter/<site>/<day>-items.{tsv,parquet}`` (and ``-titles``) from the day's pretable."""
    if site.counter.items is None:
        raise ConfigError(f"site {site.key} has no COUNTER item rules; add counter: {{items: ...}} to its entry "
                          "in the sites file")
    tsv, parquet = pretable_paths(settings, site, day)
    source = _pretable_file(tsv, parquet)
    if source is None:
        raise InputError(f"{site.key} {day}: no pretable at {tsv}; materialise the pretable first")
    rules = load_rules(site.counter.items)
    zone = site_zone(site.timezone)
    tz = None if zone is dt.timezone.utc else zone  # None: the rows' UTC times are local already
    clock = time.perf_counter()
    rows = _to_local(_read(source), tz)
    following = _pretable_file(*pretable_paths(settings, site, day + dt.timedelta(days=1)))
    if following is not None:
        # Only the first minute (local time) matters for a double click across midnight; the
        # pretable is not sorted by time (Matomo's is by ip), so filter rather than stop early.
        limit = (day + dt.timedelta(days=1) - dt.date(1970, 1, 1)).days * 86400 + 60
        after = _to_local(_read(following, before_utc=_earliest_utc(tz, limit)), tz)
        t = after.server_time
        rows = rows.concat(after.take((t != NO_TIME) & (t < limit)))
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
