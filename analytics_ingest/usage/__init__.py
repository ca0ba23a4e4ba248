"""Usage reports over time windows (WeNet memex-style analytics) from small per-day aggregates.

* :mod:`.windows`     — memex window names (TODAY, 7D, ALL, nW/nM/nY, start/end) → days
* :mod:`.daily`       — one pass over a day's delivered hits → ``<home>/usage/<site>/<day>.parquet``
* :mod:`.first_seen`  — each visitor's first day, for new vs returning visitors
* :mod:`.report`      — a window's metrics and top tables from the day aggregates
* :mod:`.output`      — memex-style CSV/TSV (``metric, count, description``) and Markdown
* :mod:`.cli`         — ``analytics-ingest report``

No Dagster here: the Dagster layer calls these functions.
"""

from .daily import build_day_aggregate, ensure_day_aggregates, is_stale
from .output import render, to_markdown, write_report
from .report import UsageReport, compute_report
from .windows import Window, resolve_window, window_ending

__all__ = ["UsageReport", "Window", "build_day_aggregate", "compute_report", "ensure_day_aggregates", "is_stale",
           "render", "resolve_window", "to_markdown", "window_ending", "write_report"]
