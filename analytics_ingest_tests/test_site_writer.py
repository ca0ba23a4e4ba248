"""One Matomo writer per site at a time, whoever launches it (CLI, Dagster run, archive).

Real parts: the ledger on SQLite, PostgreSQL and MariaDB; the CLI as subprocesses against the
loopback fake Matomo; ``kill -9`` for a crashed holder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from analytics_ingest.archiving import archive_day
from analytics_ingest.engine import make_importer, open_ledger
from analytics_ingest.ledger import Ledger
from analytics_ingest.matomo.archive import RunnerResult
from analytics_ingest.site_writer import SiteBusy, site_writer
from analytics_ingest.weblogs.importer import ImportOptions
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN, make_log


def test_the_ledger_gives_a_site_to_one_writer_at_a_time(ledger_url):
    ledger = Ledger(ledger_url, destination="matomo:http://a.example")
    other_matomo = Ledger(ledger_url, destination="matomo:http://b.example")
    try:
        assert ledger.acquire_site_writer(1, "host:1:a", "import of a.log", 30)
        assert not ledger.acquire_site_writer(1, "host:2:b", "import of b.log", 30)
        holder = ledger.site_writer(1)
        assert (holder.owner, holder.what) == ("host:1:a", "import of a.log")
        assert ledger.acquire_site_writer(2, "host:2:b", "archive of 2024-03-10", 30)  # another site
        assert other_matomo.acquire_site_writer(1, "host:3:c", "import", 30)  # another Matomo's site 1
        assert ledger.renew_site_writer(1, "host:1:a", 30)
        assert not ledger.renew_site_writer(1, "host:2:b", 30)
        ledger.release_site_writer(1, "host:2:b")  # not the holder: nothing happens
        assert ledger.site_writer(1).owner == "host:1:a"
        ledger.release_site_writer(1, "host:1:a")
        assert ledger.site_writer(1) is None
        # An expired hold (a holder that stopped renewing) is free for the next writer.
        assert ledger.acquire_site_writer(1, "host:2:b", "import of b.log", 0.2)
        time.sleep(0.4)
        assert ledger.site_writer(1) is None
        assert ledger.acquire_site_writer(1, "host:1:a", "import of a.log", 30)
        assert not ledger.renew_site_writer(1, "host:2:b", 30)  # the old holder learns it lost the site
    finally:
        ledger.close()
        other_matomo.close()


def test_the_lock_is_reentrant_in_a_thread_and_waits_across_threads(sqlite_ledger_url):
    ledger = Ledger(sqlite_ledger_url)
    order: list[str] = []
    try:
        with site_writer(ledger, 1, "replay"):
            with site_writer(ledger, 1, "import inside the replay"):  # nested: no self-deadlock
                order.append("nested")
            with pytest.raises(SiteBusy, match=r"site 1 is being written to by another writer \(replay by "):
                threading_result: list[BaseException] = []

                def other():
                    try:
                        with site_writer(ledger, 1, "archive", wait=0.3):
                            order.append("other thread")  # pragma: no cover - must not get here
                    except BaseException as exc:  # noqa: BLE001
                        threading_result.append(exc)

                t = threading.Thread(target=other)
                t.start()
                t.join()
                raise threading_result[0]
        assert ledger.site_writer(1) is None  # released on exit
        assert order == ["nested"]
    finally:
        ledger.close()


def _cli(tmp_path: Path, fake: FakeMatomo, *args: str) -> list[str]:
    return [sys.executable, "-m", "analytics_ingest.cli", "import", *args, "--recorders", "2", "--batch-size", "50",
            "--json", "--no-progress"]


def _env(tmp_path: Path, fake: FakeMatomo) -> dict:
    env = {**os.environ, "MATOMO_URL": fake.url, "MATOMO_API_TOKEN": TOKEN,
           "ANALYTICS_INGEST_HOME": str(tmp_path / "home")}
    env.pop("ANALYTICS_INGEST_LEDGER_URL", None)
    return env


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_a_second_import_of_the_same_site_waits_and_never_writes_beside_the_first(tmp_path):
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    a = make_log(first, 10_000, seed=1, date="2024-03-10", tz="+0000")  # ~8 s at 0.1 s per batch
    b = make_log(second, 1_000, seed=2, date="2024-03-11", tz="+0000")
    with FakeMatomo(token=TOKEN, sites=SITES, commit_delay=0.1) as fake:
        env = _env(tmp_path, fake)
        one = subprocess.Popen(_cli(tmp_path, fake, str(first), "--site", "1"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait(lambda: fake.bulk_posts >= 1, 60, "the first import's first batch")
        # Without --wait: one line naming the holder, exit 2, nothing sent.
        busy = subprocess.run(_cli(tmp_path, fake, str(second), "--site", "1"), env=env,
                              capture_output=True, text=True, timeout=60)
        assert busy.returncode == 2, busy.stderr
        assert busy.stderr.count("\n") == 1 and "Traceback" not in busy.stderr
        assert "site 1 is being written to by another writer (import of a.log by " in busy.stderr
        assert "--wait SECONDS" in busy.stderr
        assert not any(h["cdt"].startswith("2024-03-11") for h in fake.hits(1))
        assert busy.stdout == ""  # no summary: it stopped before reading a line
        # Another site is not held up.
        other = subprocess.run(_cli(tmp_path, fake, str(second), "--site", "2"), env=env,
                               capture_output=True, text=True, timeout=120)
        assert other.returncode == 0, other.stderr
        assert one.poll() is None, "the first import ended too early for the test to mean anything"
        # With --wait: it waits (and says so once), then runs after the first import.
        waited = subprocess.run(_cli(tmp_path, fake, str(second), "--site", "1", "--wait", "300"), env=env,
                                capture_output=True, text=True, timeout=300)
        out, err = one.communicate(timeout=300)
        assert one.returncode == 0, err
        assert waited.returncode == 0, waited.stderr
        assert waited.stderr.count("waiting for the other Matomo writer to finish (import of a.log by ") == 1
        assert json.loads(out)["tracked"] == a["tracked"] and json.loads(waited.stdout)["tracked"] == b["tracked"]
        hits = fake.hits(1)
        first_posts = [h["_post"] for h in hits if h["cdt"].startswith("2024-03-10")]
        second_posts = [h["_post"] for h in hits if h["cdt"].startswith("2024-03-11")]
        assert len(first_posts) == a["tracked"] and len(second_posts) == b["tracked"]
        assert max(first_posts) < min(second_posts), "the two imports of site 1 overlapped"
        assert fake.duplicates() == {}


def test_a_killed_writer_does_not_hold_the_site(tmp_path):
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    make_log(first, 3_000, seed=1, date="2024-03-10", tz="+0000")
    b = make_log(second, 500, seed=2, date="2024-03-11", tz="+0000")
    with FakeMatomo(token=TOKEN, sites=SITES, commit_delay=0.02) as fake:
        env = _env(tmp_path, fake)
        one = subprocess.Popen(_cli(tmp_path, fake, str(first), "--site", "1"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait(lambda: fake.bulk_posts >= 2, 60, "the first import's batches")
        os.kill(one.pid, signal.SIGKILL)
        one.communicate(timeout=30)
        started = time.monotonic()
        after = subprocess.run(_cli(tmp_path, fake, str(second), "--site", "1"), env=env,
                               capture_output=True, text=True, timeout=60)
        assert after.returncode == 0, after.stderr
        assert json.loads(after.stdout)["tracked"] == b["tracked"]
        assert time.monotonic() - started < 30  # not the 60 s TTL: a dead local holder is seen at once
    # A holder on another machine is waited for until its hold expires.
    ledger = Ledger(f"sqlite:///{tmp_path / 'other.sqlite'}")
    try:
        assert ledger.acquire_site_writer(1, "elsewhere:4242:abcd", "import of c.log", 1.0)
        clock = time.monotonic()
        with site_writer(ledger, 1, "import of d.log", wait=30):
            assert ledger.site_writer(1).what == "import of d.log"
        assert 0.5 < time.monotonic() - clock < 30
    finally:
        ledger.close()


class _RecordingRunner:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def run(self, idsite, first_day, last_day) -> RunnerResult:
        self.calls.append(time.monotonic())
        return RunnerResult(runner="recording", command="archive", exit_status=0, output_tail="ok", seconds=0.0)


def test_archiving_waits_for_an_import_of_the_same_site(tmp_path, fake, settings):
    log = tmp_path / "access.log"
    make_log(log, 300, seed=3, date="2024-03-10", tz="+0000")
    site = SimpleNamespace(id=1, key="demo", timezone="UTC")  # archive_day reads the id
    ledger = open_ledger(settings)
    runner = _RecordingRunner()
    try:
        with make_importer(settings, ledger, 1, timezone="UTC") as importer:
            assert importer.import_file(str(log), ImportOptions()).complete
        release = threading.Event()
        held = threading.Event()

        def importing():
            with site_writer(ledger, 1, "import of e.log"):
                held.set()
                release.wait(30)

        holder = threading.Thread(target=importing)
        holder.start()
        held.wait(10)
        result: list = []
        archiver = threading.Thread(target=lambda: result.append(
            archive_day(settings, ledger, site, dt.date(2024, 3, 10), runner=runner)))
        archiver.start()
        time.sleep(1.0)
        assert runner.calls == [] and archiver.is_alive()  # waiting for the import
        released_at = time.monotonic()
        release.set()
        holder.join(10)
        archiver.join(30)
        assert result and result[0].archived and runner.calls and runner.calls[0] >= released_at
    finally:
        ledger.close()
