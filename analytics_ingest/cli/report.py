"""``analytics-ingest report``: a usage report over a memex window, on stdout or into files.

Works right after an import, without Dagster: day aggregates that are missing or older than the
day's last delivery are built from the ledger first (the window's days and the earlier ones, which
new-vs-returning visitors need). Exit 0: every day of the window had data; 1: the report was
written but some days had no data (listed on stderr); 2: bad input or configuration (one line).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from ..errors import IngestError, InputError
from ..usage.windows import EXAMPLES, resolve_window

EXIT_OK, EXIT_MISSING, EXIT_ERROR = 0, 1, 2


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` sub-command. Values are checked by :func:`run_report`, not argparse,
    so every mistake ends as one line on stderr."""
    p = subparsers.add_parser(
        "report", help="usage report (visitors, sessions, page views...) over a time window",
        description="Usage report of one site over a memex window (--range) or explicit days (--start/--end, "
                    "site-local, end included; an end at exactly midnight stops the day before). Columns "
                    "metric, count, description; with -o, detail tables go to <stem>-top_pages.<ext> etc. "
                    "Env: ANALYTICS_INGEST_HOME, ANALYTICS_INGEST_LEDGER_URL, ANALYTICS_INGEST_SITES.")
    p.add_argument("--site", help="site key or Matomo id from the sites file (default: the only site)")
    p.add_argument("--range", dest="range_name", metavar="WINDOW", help=f"memex window: {EXAMPLES}")
    p.add_argument("--start", metavar="ISO", help="first day (ISO date or datetime; naive = site time)")
    p.add_argument("--end", metavar="ISO", help="last day, included (ISO date or datetime)")
    p.add_argument("--today", metavar="YYYY-MM-DD", help="anchor moving windows at this day (default: today)")
    p.add_argument("--format", dest="report_format", metavar="csv|tsv",
                   help="output format (default: from -o's extension, else csv)")
    p.add_argument("-o", "--output", metavar="FILE", help="write FILE and its detail tables (default: stdout)")
    p.add_argument("--top", default="100", metavar="N", help="rows of each top table (default 100)")
    p.add_argument("--no-build", action="store_true", help="only read existing day aggregates")
    p.add_argument("--home", help="state directory (env ANALYTICS_INGEST_HOME, default ./.analytics_ingest)")
    p.add_argument("--ledger-url", help="SQLAlchemy URL of the ledger (env ANALYTICS_INGEST_LEDGER_URL)")
    return p


def _check_args(args) -> tuple[int, str | None, dt.date | None]:
    top = str(getattr(args, "top", "100"))
    if not top.isdigit() or int(top) < 1:
        raise InputError(f"--top must be a whole number of 1 or more, got {top!r}")
    fmt = getattr(args, "report_format", None)
    if fmt is not None and fmt.lower() not in ("csv", "tsv"):
        raise InputError(f"--format must be csv or tsv, got {fmt!r}")
    if args.range_name and (args.start or args.end):
        raise InputError("give either --range or --start/--end, not both")
    if not args.range_name and not (args.start or args.end):
        raise InputError(f"no window given; use --range ({EXAMPLES}) or --start and --end")
    today = None
    if getattr(args, "today", None):
        try:
            today = dt.date.fromisoformat(args.today)
        except ValueError:
            raise InputError(f"--today {args.today!r} is not a date; use YYYY-MM-DD") from None
    return int(top), fmt.lower() if fmt else None, today


def run_report(args, *, stdout=None, stderr=None) -> int:
    """Run ``report``; see the module docstring for exit statuses."""
    from ..config import load_settings
    from ..usage.output import render, write_report
    from ..usage.report import compute_report
    from ..usage.settings import UsageSettings

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        top, fmt, today = _check_args(args)
        from ..sites import pick_site  # here: the import command builds this parser too

        site = pick_site(args.site)
        window = resolve_window(args.range_name, args.start, args.end, tz=site.timezone, today=today,
                                first_day=site.start_date)
        settings = load_settings(home=args.home, ledger_url=args.ledger_url)
        usage = UsageSettings.from_env(os.environ)
        if not args.no_build:
            _build_missing(settings, site, window, err)
        report = compute_report(settings, site, window, top=top, usage=usage)
        if args.output:
            write_report(report, args.output, fmt)
        else:
            out.write(render(report, fmt or "csv"))
            out.flush()
    except IngestError as exc:
        print(f"analytics-ingest: error: {' '.join(str(exc).split())}", file=err)
        return EXIT_ERROR
    if report.missing_days:
        days = report.missing_days
        shown = ", ".join(d.isoformat() for d in days[:5]) + (" ..." if len(days) > 5 else "")
        print(f"analytics-ingest: {len(days)} day(s) of {window.label} have no data: {shown}; "
              "import them and run the report again", file=err)
        return EXIT_MISSING
    return EXIT_OK


def _build_missing(settings, site, window, err) -> None:
    """Build missing or stale day aggregates from the site's first day to the window's end."""
    from ..engine import open_ledger
    from ..usage.daily import ensure_day_aggregates

    first = site.start_date
    days = [first + dt.timedelta(days=i) for i in range((window.last_day - first).days + 1)]
    if not days:
        return
    with open_ledger(settings) as ledger:
        done = ensure_day_aggregates(settings, ledger, site, days)
    if done["built"] or done["rebuilt"]:
        print(f"analytics-ingest: built {len(done['built'])} and rebuilt {len(done['rebuilt'])} day aggregate(s) "
              f"of site {site.key}", file=err)


__all__ = ["add_report_parser", "run_report"]
