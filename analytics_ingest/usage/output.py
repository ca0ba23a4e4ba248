"""A usage report as memex-style CSV/TSV files and as Markdown (Dagster metadata).

The main file has memex's analytics columns ``metric, count, description``; detail tables go to
sibling files named ``<stem>-top_pages.<ext>``, ``-top_downloads``, ``-top_counter_items``,
``-opencast_actions``, ``-daily`` and ``-missing_days``. Unlike memex, no preamble rows (app id,
from, to) precede the header, so every file is a plain table any CSV reader loads; the window is
in the ``days`` row's description and in the Markdown.

Every file is written to a hidden temporary file in the target folder, then renamed over the
target: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..atomic import write_text
from ..errors import InputError
from .report import UsageReport
from .sources import COUNTER_METRICS

FORMATS = {"csv": ",", "tsv": "\t"}
HEADER = ("metric", "count", "description")


def _delimiter(fmt: str) -> str:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise InputError(f"unknown report format {fmt!r}; use csv or tsv") from None


def _table_text(header, rows, fmt: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=_delimiter(fmt), lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _metric_rows(report: UsageReport):
    w = report.window
    for m in report.metrics:
        text = m.description
        if m.metric == "days":
            text = f"{text}: {w.first_day.isoformat()} to {w.last_day.isoformat()} ({w.label}, {report.timezone})"
        yield m.metric, m.count, text


def render(report: UsageReport, fmt: str = "csv") -> str:
    """The main table (``metric, count, description``) as text."""
    return _table_text(HEADER, _metric_rows(report), fmt)


def detail_tables(report: UsageReport) -> dict[str, tuple[tuple, list]]:
    """``{suffix: (header, rows)}`` of the detail tables (empty ones included: no rows ≠ no file)."""
    missing = ([(d.isoformat(), "usage") for d in report.missing_days]
               + [(d.isoformat(), "counter") for d in report.counter_missing_days]
               + [(d.isoformat(), "opencast") for d in report.opencast_missing_days])
    return {
        "top_pages": (("rank", "page", "pageviews"), [(i, p, n) for i, (p, n) in enumerate(report.top_pages, 1)]),
        "top_downloads": (("rank", "download", "downloads"),
                          [(i, p, n) for i, (p, n) in enumerate(report.top_downloads, 1)]),
        "top_counter_items": (("rank", "item", "title", *COUNTER_METRICS),
                              [(i, *row) for i, row in enumerate(report.top_counter_items, 1)]),
        "opencast_actions": (("type", "actions"), list(report.opencast_action_types)),
        "daily": (("day", "visitors", "sessions", "pageviews", "downloads", "events", "status"),
                  [tuple(d.values()) for d in report.daily]),
        "missing_days": (("day", "source"), sorted(missing)),
    }


def _write_atomically(path: Path, text: str) -> None:
    write_text(path, text)


def format_of(path: str | os.PathLike, default: str | None = None) -> str:
    """``csv`` or ``tsv`` from the file's extension (memex's rule), else ``default``."""
    ext = Path(path).suffix.lower().lstrip(".")
    if ext in FORMATS:
        return ext
    if default is not None:
        return default
    raise InputError(f"cannot tell the format of {path}: name it .csv or .tsv, or give --format")


def write_report(report: UsageReport, path: str | os.PathLike, fmt: str | None = None) -> dict[str, Path]:
    """Write the main file and its detail tables; returns ``{"metrics": path, "top_pages": ...}``."""
    path = Path(path)
    fmt = fmt or format_of(path)
    _delimiter(fmt)
    stem = path.with_suffix("") if path.suffix.lower() in (".csv", ".tsv") else path
    written = {"metrics": path}
    _write_atomically(path, render(report, fmt))
    for suffix, (header, rows) in detail_tables(report).items():
        target = stem.with_name(f"{stem.name}-{suffix}.{fmt}")
        _write_atomically(target, _table_text(header, rows, fmt))
        written[suffix] = target
    return written


def _md_cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _days_text(days, limit: int = 10) -> str:
    shown = ", ".join(d.isoformat() for d in days[:limit])
    return shown + (f" … ({len(days)} days)" if len(days) > limit else "")


def to_markdown(report: UsageReport, *, top: int = 10) -> str:
    """A short Markdown summary: metrics table, missing days, top pages and downloads."""
    w = report.window
    lines = [f"**{report.site_key}** · {w.label} · {w.first_day.isoformat()} → {w.last_day.isoformat()} "
             f"({report.timezone})", "", "| metric | count | description |", "|---|---:|---|"]
    lines += [f"| {m.metric} | {m.count:,} | {_md_cell(m.description)} |" for m in report.metrics]
    notes = []
    if report.missing_days:
        notes.append(f"- missing day aggregates: {_days_text(report.missing_days)}")
    if report.incomplete_days:
        notes.append(f"- days built while incomplete: {_days_text(report.incomplete_days)}")
    if report.counter_missing_days:
        notes.append(f"- days without COUNTER tables: {_days_text(report.counter_missing_days)}")
    if report.history_missing_days:
        notes.append(f"- {report.history_missing_days} earlier days without aggregate: new visitors may be "
                     "over-counted")
    if notes:
        lines += ["", *notes]
    for title, rows in (("Top pages", report.top_pages), ("Top downloads", report.top_downloads)):
        if rows:
            lines += ["", f"**{title}**", "", "| # | path | hits |", "|---:|---|---:|"]
            lines += [f"| {i} | {_md_cell(p)} | {n:,} |" for i, (p, n) in enumerate(rows[:top], 1)]
    return "\n".join(lines) + "\n"


__all__ = ["FORMATS", "HEADER", "detail_tables", "format_of", "render", "to_markdown", "write_report"]
