"""Usage reports over time windows (WeNet memex-style analytics) from small per-day aggregates.

* :mod:`.windows`     — memex window names (TODAY, 7D, ALL, nW/nM/nY, start/end) → days
* :mod:`.settings`    — the report windows and where Opencast's actions are, from the environment
* :mod:`.daily`       — one pass over a day's delivered hits → ``<home>/usage/<site>/<day>.parquet``
* :mod:`.first_seen`  — each visitor's first day, for new vs returning visitors
* :mod:`.report`      — a window's metrics and top tables from the day aggregates
* :mod:`.output`      — memex-style CSV/TSV (``metric, count, description``) and Markdown
* :mod:`.cli`         — ``analytics-ingest report``

No Dagster here: the Dagster layer calls these functions. The names below are imported when first
used (PEP 562), so ``import analytics_ingest.usage.windows`` (the CLI's help text) does not load
numpy and pyarrow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "UsageReport": ".report", "compute_report": ".report",
    "UsageSettings": ".settings",
    "Window": ".windows", "resolve_window": ".windows", "window_ending": ".windows",
    "build_day_aggregate": ".daily", "ensure_day_aggregates": ".daily", "is_stale": ".daily",
    "render": ".output", "to_markdown": ".output", "write_report": ".output",
}

__all__ = ["UsageReport", "UsageSettings", "Window", "build_day_aggregate", "compute_report", "ensure_day_aggregates",
           "is_stale", "render", "resolve_window", "to_markdown", "window_ending", "write_report"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # once: later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
