"""A day's usage reports: the configured windows ending on that day, as CSV and TSV files.

What the ``<site>/usage_reports`` asset materialises for one partition. The day aggregates from the
site's first day to the partition are built when missing or stale (new-vs-returning visitors need
the history); once built, a window reads one small file per day.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .daily import ensure_day_aggregates
from .output import write_report
from .report import UsageReport, compute_report
from .windows import window_ending

ENV_WINDOWS = "ANALYTICS_INGEST_REPORT_WINDOWS"
DEFAULT_WINDOWS = ("TODAY", "7D", "30D")  # memex's first catalogue: today, last week, last month


def configured_windows(environ=None) -> tuple[str, ...]:
    text = (os.environ if environ is None else environ).get(ENV_WINDOWS, "")
    names = tuple(n.strip().upper() for n in text.split(",") if n.strip()) or DEFAULT_WINDOWS
    for name in names:
        try:
            window_ending(name, dt.date(2024, 1, 31), first_day=dt.date(2024, 1, 1))
        except Exception as exc:  # noqa: BLE001 - turned into the one-line config error below
            raise ConfigError(f"{ENV_WINDOWS}: {exc}") from None
    return names


@dataclass
class DayReports:
    day: str
    built_days: int = 0
    reports: list[tuple[UsageReport, dict[str, Path]]] = field(default_factory=list)


def reports_for_day(settings, ledger, site, day: dt.date, windows=None) -> DayReports:
    """Write ``<home>/reports/<site>/<day>/<WINDOW>.csv`` and ``.tsv`` (plus their detail tables)."""
    windows = windows or configured_windows()
    history = [site.start_date + dt.timedelta(days=n) for n in range((day - site.start_date).days + 1)]
    built = ensure_day_aggregates(settings, ledger, site, history)
    out = DayReports(day=day.isoformat(), built_days=len(built["built"]) + len(built["rebuilt"]))
    folder = Path(settings.home) / "reports" / site.key / day.isoformat()
    for name in windows:
        window = window_ending(name, day, first_day=site.start_date)
        report = compute_report(settings, site, window)
        paths = {}
        for fmt in ("csv", "tsv"):
            paths.update({f"{k}.{fmt}": v for k, v in write_report(report, folder / f"{name}.{fmt}", fmt).items()})
        out.reports.append((report, paths))
    return out
