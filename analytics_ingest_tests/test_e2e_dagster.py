"""End to end through the real Dagster processes: webserver and daemon on a temporary
DAGSTER_HOME, a log file dropped into the watched folder, and — with no one touching anything —
the sensor settles it, the daemon launches the run, the day becomes Loaded in the ledger, the
partition shows as materialised in the GraphQL API, every trackable hit is in the outbox once, and
the ready-days sensor then takes the day through its pretable to COUNTER metrics (Calculated).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import requests

from analytics_ingest.config import load_settings
from analytics_ingest.engine import open_ledger
from analytics_ingest_tests.helpers import make_log
from analytics_ingest_tests.processes import free_port, http_ok, processes, wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DAY = "2024-03-14"
QUERY = """
query ($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
  }
}"""

pytestmark = pytest.mark.skipif(
    not (BIN / "dagster-webserver").exists() or not (BIN / "dagster-daemon").exists(),
    reason="dagster-webserver / dagster-daemon are not installed in this environment",
)


def test_a_dropped_file_becomes_a_loaded_day_through_the_daemon(tmp_path):
    home, dagster_home, logs = tmp_path / "home", tmp_path / "dagster_home", tmp_path / "logs"
    dagster_home.mkdir()
    logs.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    sites = tmp_path / "sites.yaml"
    sites.write_text(
        "sites:\n  - {id: 1, key: web, name: Web, main_url: 'https://example.org', log_dir: logs,\n"
        "     file_pattern: 'access.log*', timezone: UTC, start_date: 2024-03-01,\n"
        "     expected_files: [{from: 2024-03-01, count: 1}],\n"
        "     pretable: {wait_for_neighbours: false}, counter: {items: 'builtin:demo'}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MATOMO_", "ANALYTICS_INGEST_", "DAGSTER_"))}
    env.update(ANALYTICS_INGEST_SITES=str(sites), ANALYTICS_INGEST_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    port = free_port()
    outputs = [tmp_path / "webserver.log", tmp_path / "daemon.log"]
    commands = [
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(ROOT / "workspace.yaml")],
        [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
    ]
    with processes() as start:
        for command, out in zip(commands, outputs):
            start(command, out, ROOT, env)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{base}/server_info"), 300, "the webserver did not answer", outputs)
        # Drop the file only now, as rsync would: the sensor must see it settle on its own.
        source = tmp_path / "staging.log"
        manifest = make_log(source, 500, seed=8, date=DAY, tz="+0000")
        shutil.move(source, logs / f"access.log.{DAY}")

        def materialized() -> bool:
            answer = requests.post(f"{base}/graphql", timeout=10, json={
                "query": QUERY, "variables": {"path": ["web", "matomo_import"], "partitions": [DAY]}}).json()
            asset = (answer.get("data") or {}).get("assetOrError") or {}
            return any(m["partition"] == DAY for m in asset.get("assetMaterializations") or [])

        wait_for(materialized, 480, f"web/matomo_import {DAY} was not materialised", outputs)
        def day_status() -> str | None:
            ledger = open_ledger(load_settings(home=home, environ={}))
            try:
                return ledger.day_status(1, dt.date.fromisoformat(DAY))
            finally:
                ledger.close()

        assert day_status() in ("loaded", "pretable", "calculated")  # the next stages may have started
        sent = [json.loads(line) for line in (home / "outbox" / "site-1.jsonl").read_text().splitlines()]
        assert len(sent) == manifest["tracked"] == len({r["pv_id"] for r in sent})
        # Then the ready-days sensor, on its own, takes the day through its pretable to COUNTER metrics.
        wait_for(lambda: day_status() == "calculated", 420, f"{DAY} did not reach Calculated", outputs)
        assert (home / "pretables" / "web" / f"{DAY}.parquet").exists()
        assert (home / "counter" / "web" / f"{DAY}-items.parquet").exists()
