"""A day's usage reports: the configured windows ending on that day, as CSV and TSV files.

What the ``<site>/usage_reports`` asset materialises for one partition. The day aggregates from the
site's first day to the partition are built when missing or stale (new-vs-returning visitors need
the history); once built, a window reads one small file per day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from ..vocabulary import DAY_CALCULATED, DAY_DONE
from .daily import ensure_day_aggregates
from .output import write_report
from .report import UsageReport, compute_report
from .settings import UsageSettings
from .windows import window_ending


@dataclass
class DayReports:
    day: str
    built_days: int = 0
    reports: list[tuple[UsageReport, dict[str, Path]]] = field(default_factory=list)
    day_status: str = ""  # the ledger's, after the reports: done once the day was calculated


def reports_for_day(settings, ledger, site, day: dt.date, usage: UsageSettings | None = None) -> DayReports:
    """Write ``<home>/reports/<site>/<day>/<WINDOW>.csv`` and ``.tsv`` (plus their detail tables)
    for each of ``usage.windows`` (default :class:`UsageSettings`: TODAY, 7D, 30D)."""
    usage = usage or UsageSettings()
    history = [site.start_date + dt.timedelta(days=n) for n in range((day - site.start_date).days + 1)]
    built = ensure_day_aggregates(settings, ledger, site, history)
    out = DayReports(day=day.isoformat(), built_days=len(built["built"]) + len(built["rebuilt"]))
    folder = Path(settings.home) / "reports" / site.key / day.isoformat()
    for name in usage.windows:
        window = window_ending(name, day, first_day=site.start_date)
        report = compute_report(settings, site, window, usage=usage)
        paths = {}
        for fmt in ("csv", "tsv"):
            paths.update({f"{k}.{fmt}": v for k, v in write_report(report, folder / f"{name}.{fmt}", fmt).items()})
        out.reports.append((report, paths))
    # SciELO's Done: the day's COUNTER metrics are calculated and its reports exported. A day not
    # yet Calculated keeps its status (its reports still count what Matomo received).
    ledger.advance_day(site.id, day, DAY_DONE, after=(DAY_CALCULATED, DAY_DONE))
    out.day_status = ledger.day_status(site.id, day) or ""
    return out
