"""Bench: a 365-day usage report from 365 synthetic per-day aggregates.

Writes the aggregates directly (no logs, no ledger): ``--visitors`` distinct visitors a day drawn
from a population of ``--population`` (so some return), ``--pages`` distinct pages a day. Then
times the report twice: cold (builds the first-seen index) and warm (index up to date), plus a
rebuild of one past day (forces a full index rebuild). Prints seconds and peak RSS.

    .venv/bin/python bench/usage_window.py [--days 365] [--visitors 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics_ingest.config import load_settings  # noqa: E402
from analytics_ingest.sites import SiteConfig  # noqa: E402
from analytics_ingest.usage.report import compute_report  # noqa: E402
from analytics_ingest.usage.store import day_path, salt_id, site_salt, write_day  # noqa: E402
from analytics_ingest.usage.windows import window_ending  # noqa: E402


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_synthetic(settings, site, days: list[dt.date], visitors: int, population: int, pages: int,
                    seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    sid = salt_id(site_salt(settings, site))
    pool = rng.integers(-(2**63), 2**63 - 1, size=population, dtype=np.int64)
    page_names = [f"/article/{i}" for i in range(pages * 5)]
    for day in days:
        vids = rng.choice(pool, size=visitors, replace=False)
        hits = rng.integers(1, 20, size=visitors)
        vis = {int(v): (int(h), max(1, int(h) // 5)) for v, h in zip(vids, hits)}
        chosen = rng.choice(len(page_names), size=pages, replace=False)
        page_counts = {page_names[i]: int(n) for i, n in zip(chosen, rng.integers(1, 50, size=pages))}
        downloads = {f"/files/{i}.pdf": 3 for i in range(pages // 10)}
        counts = {"pageviews": sum(page_counts.values()), "downloads": sum(downloads.values()), "events": 0,
                  "bots_tracked": 0, "visitors": len(vis), "sessions": sum(s for _, s in vis.values()),
                  "hits": int(hits.sum()), "rejected_skipped": 0, "ignored_bots": 100, "ignored_static": 400,
                  "ignored_http_errors": 20, "ignored_http_redirects": 10, "ignored_filtered": 0,
                  "ignored_invalid": 1}
        meta = {"site_id": site.id, "site_key": site.key, "day": day.isoformat(), "timezone": site.timezone,
                "salt_id": sid, "last_delivery": None, "day_status": "loaded", "files": 1, "missing_files": 0,
                "counts": counts}
        write_day(day_path(settings, site, day), meta, vis, page_counts, downloads)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--visitors", type=int, default=2000)
    ap.add_argument("--population", type=int, default=60_000)
    ap.add_argument("--pages", type=int, default=500)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        last = dt.date(2024, 12, 31)
        first = last - dt.timedelta(days=args.days - 1)
        site = SiteConfig(id=1, key="bench", name="Bench", main_url="https://example.org", log_dir=Path(tmp),
                          timezone="Europe/Paris", start_date=first)
        settings = load_settings(home=Path(tmp) / "home", environ={})
        days = [first + dt.timedelta(days=i) for i in range(args.days)]
        t0 = time.perf_counter()
        write_synthetic(settings, site, days, args.visitors, args.population, args.pages)
        gen = time.perf_counter() - t0
        window = window_ending(f"{args.days}D", last, first_day=first)
        results = []
        for label in ("cold (builds first-seen index)", "warm"):
            t0 = time.perf_counter()
            warm = compute_report(settings, site, window)
            results.append((label, time.perf_counter() - t0))
        write_synthetic(settings, site, days[100:101], args.visitors, args.population, args.pages, seed=2)
        t0 = time.perf_counter()
        compute_report(settings, site, window)
        results.append(("after rebuilding one past day (full index rebuild)", time.perf_counter() - t0))
        size = sum(p.stat().st_size for p in (Path(tmp) / "home" / "usage" / site.key).glob("*.parquet"))
        print(f"aggregates: {args.days} days x {args.visitors} visitors/day, {size / 1e6:.1f} MB on disk, "
              f"written in {gen:.2f} s")
        for label, seconds in results:
            print(f"report {window.label}: {seconds:.2f} s  [{label}]")
        print(f"warm report: visitors={warm.value('visitors')} new={warm.value('new_visitors')} "
              f"sessions={warm.value('sessions')} pageviews={warm.value('pageviews')}")
        print(f"peak RSS: {_peak_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
