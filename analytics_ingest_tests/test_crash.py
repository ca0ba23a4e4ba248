"""kill -9 the importer at seeded points, rerun, and prove every trackable line arrived once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN, make_log

SEED = 20261122


def _wait_for(predicate, proc, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("kill point not reached in time")


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker-processes"])
def test_kill_minus_9_at_seeded_points_then_rerun_delivers_each_hit_once(tmp_path, parallel):
    log = tmp_path / "access.log"
    manifest = make_log(log, 12_000, seed=5)
    rng = random.Random(SEED)
    with FakeMatomo(token=TOKEN, sites=SITES) as fake:
        env = {**os.environ, "MATOMO_URL": fake.url, "MATOMO_API_TOKEN": TOKEN,
               "ANALYTICS_INGEST_HOME": str(tmp_path / "home")}
        env.pop("ANALYTICS_INGEST_LEDGER_URL", None)
        env["ANALYTICS_INGEST_PARALLEL_MIN_BYTES"] = "0" if parallel else str(1 << 40)
        cmd = [sys.executable, "-m", "analytics_ingest.cli.main", "import", str(log), "--site", "1",
               "--recorders", "4", "--batch-size", "40", "--retry-delay", "0.01", "--request-timeout", "2",
               "--settle-wait", "0.5",
               "--json", "--no-progress"]
        # About 225 bulk POSTs in all; kill at 12 distinct cumulative POST numbers.
        points = sorted(rng.sample(range(3, 190), 12))
        kills = []
        for point in points:
            mode = rng.choice(["before_commit", "after_commit", "anytime"])
            if mode == "before_commit":
                fake.inject("timeout_before_commit", on_post=point, seconds=10)
            elif mode == "after_commit":
                fake.inject("timeout_after_commit", on_post=point, seconds=10)
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if mode == "after_commit":
                reached = _wait_for(lambda: any(h["_post"] == point for h in fake.hits()), proc)
            else:
                reached = _wait_for(lambda: fake.bulk_posts >= point, proc)
            if reached:
                os.kill(proc.pid, signal.SIGKILL)
                kills.append((point, mode))
            proc.communicate(timeout=30)
        assert len(kills) >= 10, kills
        # The rerun: must finish with everything delivered exactly once.
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["status"] == "loaded"
        assert summary["tracked"] == manifest["tracked"]
        assert fake.duplicates() == {}
        assert len(fake.pv_ids(1)) == manifest["tracked"]
        # And one more run sends nothing.
        posts = fake.bulk_posts
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and fake.bulk_posts == posts
