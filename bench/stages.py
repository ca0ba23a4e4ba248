#!/usr/bin/env python3
"""Speed and memory of the stages after the import, on one generated day.

    python bench/stages.py [--lines 1000000]

Imports a generated day offline (outbox), then times each later stage on it in this process:
the pretable from our hits (the day's rows of the file's hit store, Matomo's rules, TSV +
Parquet) -- once in a fresh home, where DeviceDetector meets every user agent, and once more with
the agents remembered from that run, as on a site's next day --, the COUNTER metrics on that
pretable (demo item rules), and the day's usage aggregate. Prints rows/s, the CPU time of the
stage (close to its wall time: one core) and the peak RSS after each stage (ru_maxrss: the
process's high-water mark, so it only grows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ai-stages-"))
    logs = work / "logs"
    logs.mkdir()
    from analytics_ingest_tests import gen_logs as gen
    day = dt.date(2024, 3, 14)
    manifest = gen.generate(str(logs / "access.log.2024-03-14"), args.lines, seed=1, date=day.isoformat(), tz="+0000")
    os.remove(logs / "access.log.2024-03-14.manifest.json")
    sites = work / "sites.yaml"
    sites.write_text(
        f"sites:\n  - id: 1\n    key: bench\n    name: Bench\n    main_url: https://example.org\n    log_dir: {logs}\n"
        "    start_date: 2024-03-01\n    pretable: {wait_for_neighbours: false}\n    counter: {items: builtin:demo}\n")
    os.environ["ANALYTICS_INGEST_SITES"] = str(sites)

    from analytics_ingest.config import load_settings
    from analytics_ingest.counter.daily import compute_counter_day
    from analytics_ingest.engine import open_ledger
    from analytics_ingest.pretable import build_pretable
    from analytics_ingest.sites import load_sites
    from analytics_ingest.usage import build_day_aggregate
    from analytics_ingest.weblogs import pipeline

    # The stages' libraries are loaded before the clock starts: a step process pays that once
    # (~0.4 s for pyarrow, its Parquet and compute modules, and the pandas they pull in).
    import pyarrow  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    settings = load_settings(home=work / "home", environ={})
    site = load_sites()[0]
    print(f"{args.lines:,} lines, {manifest['tracked']:,} tracked hits")
    with open_ledger(settings) as ledger:
        clock, cpu = time.perf_counter(), time.process_time()
        pipeline.queue_day(ledger, site, day)
        report = pipeline.import_day(settings, ledger, site, day)
        took, used = time.perf_counter() - clock, time.process_time() - cpu
        print(f"import (offline)     {took:6.1f} s  {args.lines / took:9,.0f} lines/s  day {report.status}")
        clock, cpu = time.perf_counter(), time.process_time()
        pretable = build_pretable(settings, ledger, site, day)
        took, used = time.perf_counter() - clock, time.process_time() - cpu
        print(f"pretable (hits)      {took:6.1f} s  {pretable.rows / took:9,.0f} rows/s   cpu {used:4.1f} s  peak {_peak_mb():.0f} MB"
              "   (DeviceDetector meets every agent)")
        clock, cpu = time.perf_counter(), time.process_time()
        pretable = build_pretable(settings, ledger, site, day)
        took, used = time.perf_counter() - clock, time.process_time() - cpu
        print(f"pretable again       {took:6.1f} s  {pretable.rows / took:9,.0f} rows/s   cpu {used:4.1f} s  peak {_peak_mb():.0f} MB"
              "   (agents known from an earlier run, as on a site's next day)")
        clock, cpu = time.perf_counter(), time.process_time()
        counter = compute_counter_day(settings, ledger, site, day)
        took, used = time.perf_counter() - clock, time.process_time() - cpu
        print(f"counter_metrics      {took:6.1f} s  {counter.stats['rows_read'] / took:9,.0f} rows/s   cpu {used:4.1f} s  peak {_peak_mb():.0f} MB")
        clock, cpu = time.perf_counter(), time.process_time()
        build_day_aggregate(settings, ledger, site, day)
        took, used = time.perf_counter() - clock, time.process_time() - cpu
        print(f"usage day aggregate  {took:6.1f} s  {manifest['tracked'] / took:9,.0f} hits/s   cpu {used:4.1f} s  peak {_peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
