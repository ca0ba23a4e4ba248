#!/usr/bin/env python3
"""Wall time of a 365-day backfill of one site through Dagster, on small demo days.

    python bench/backfill.py [--days 365] [--lines-per-day 200]

Writes one small log per day, then materialises the site's assets over the whole year the way
the asset backfill policy cuts it (runs of at most 31 partitions), each run through Dagster's
executor with the real resources (offline outbox, SQLite ledger). Prints the runs, the wall
time and the days Loaded. The daemon's own launch overhead (about one run per second) is not
included: add ~1 s per run for a backfill started from the UI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--lines-per-day", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ai-backfill-"))
    logs = work / "logs"
    logs.mkdir()
    from analytics_ingest_tests import gen_logs as gen
    start = dt.date(2024, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range(args.days)]
    for i, day in enumerate(days):
        path = logs / f"access.log.{day.isoformat()}"
        gen.generate(str(path), args.lines_per_day, seed=i, date=day.isoformat(), tz="+0000", visitors=50)
        Path(str(path) + ".manifest.json").unlink()
    (work / "sites.yaml").write_text(
        "sites:\n  - {id: 1, key: web, name: Web, main_url: 'https://example.org', log_dir: logs,\n"
        "     file_pattern: 'access.log*', timezone: UTC, start_date: 2024-01-01}\n"
    )
    os.environ.update(ANALYTICS_INGEST_SITES=str(work / "sites.yaml"), ANALYTICS_INGEST_HOME=str(work / "home"))
    for name in ("MATOMO_URL", "MATOMO_API_TOKEN", "ANALYTICS_INGEST_LEDGER_URL"):
        os.environ.pop(name, None)

    import dagster as dg

    from analytics_ingest.config import load_settings
    from analytics_ingest.defs.resources import IngestResource
    from analytics_ingest.defs.weblogs.assets import BACKFILL, build_site_assets
    from analytics_ingest.engine import open_ledger
    from analytics_ingest.sites import load_sites

    site = load_sites()[0]
    assets = build_site_assets(site)
    per_run = BACKFILL.max_partitions_per_run
    runs = [days[i : i + per_run] for i in range(0, len(days), per_run)]
    clock = time.perf_counter()
    with dg.instance_for_test() as instance:
        for chunk in runs:
            result = dg.materialize(
                assets, instance=instance, resources={"ingest": IngestResource()}, raise_on_error=False,
                tags={"dagster/asset_partition_range_start": chunk[0].isoformat(),
                      "dagster/asset_partition_range_end": chunk[-1].isoformat()},
            )
            if not result.success:
                print(f"run for {chunk[0]}..{chunk[-1]} did not succeed", file=sys.stderr)
    wall = time.perf_counter() - clock
    ledger = open_ledger(load_settings())
    try:
        loaded = sum(1 for r in ledger.day_statuses(site_id=1) if r.status == "loaded")
    finally:
        ledger.close()
    print(json.dumps({"days": len(days), "runs": len(runs), "lines_per_day": args.lines_per_day,
                      "wall_s": round(wall, 1), "days_loaded": loaded}))


if __name__ == "__main__":
    main()
