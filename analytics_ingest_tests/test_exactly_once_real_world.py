"""Exactly once on everyday paths (issue #12): a file is its content, delivery state belongs to a
destination, a lease fences the ledger, and a batch in doubt is settled only once it can no
longer commit. Each scenario is listed in docs/exactly_once.md with the test that proves it.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from analytics_ingest.config import load_settings
from analytics_ingest.engine import make_importer, open_ledger
from analytics_ingest.errors import ConfigError, LeaseLost
from analytics_ingest.ledger import Ledger
from analytics_ingest.matomo.retry import RetryPolicy
from analytics_ingest.sites import load_sites
from analytics_ingest.vocabulary import FILE_LOADED
from analytics_ingest.weblogs import pipeline
from analytics_ingest.weblogs.importer import ImportOptions
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN, make_log

FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, maintenance_delay=0.05, read_timeout=1.0,
                   settle_wait=0.2, settle_interval=0.05)
OPTIONS = ImportOptions(lanes=4, batch_size=50)


@pytest.fixture
def fake():
    with FakeMatomo(token=TOKEN, sites=SITES) as server:
        yield server
        assert server.errors == []


def _settings(tmp_path, url=None, ledger_url=None):
    return load_settings(home=tmp_path / "home", ledger_url=ledger_url, matomo_url=url,
                         matomo_token=TOKEN if url else None, environ={})


def _import(settings, path, *, policy=FAST, options=OPTIONS, **kw):
    with open_ledger(settings) as ledger, make_importer(settings, ledger, 1, policy=policy, parallel=False) as imp:
        return imp.import_file(str(path), options, **kw)


def _outbox_pv_ids(settings) -> list[str]:
    path = settings.outbox_dir / "site-1.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["pv_id"] for line in path.read_text().splitlines()]


def _exactly_once(fake, manifest_tracked: int) -> None:
    assert fake.duplicates() == {}
    assert len(fake.pv_ids(1)) == manifest_tracked


# --- 1. a file is its content ----------------------------------------------------------------------
def test_re_spelled_paths_and_symlinks_are_one_file(tmp_path, fake, ledger_url, monkeypatch):
    settings = _settings(tmp_path, fake.url, ledger_url)
    logs = tmp_path / "logs"
    logs.mkdir()
    manifest = make_log(logs / "a.log", 1200, seed=3)
    (tmp_path / "link.log").symlink_to(logs / "a.log")
    monkeypatch.chdir(logs)
    first = _import(settings, "a.log")
    assert first.status == FILE_LOADED and first.path == str(logs / "a.log")
    posts = fake.bulk_posts
    for spelling in (str(logs / "a.log"), "./a.log", "../logs/a.log", str(tmp_path / "link.log"),
                     str(logs) + "//a.log"):
        again = _import(settings, spelling)
        assert again.message.startswith("already imported"), spelling
    assert fake.bulk_posts == posts
    _exactly_once(fake, manifest["tracked"])


@pytest.mark.parametrize("how", ["rename", "copy", "gzip", "bz2", "xz", "gzip-renamed-odd"])
def test_rotated_renamed_or_recompressed_content_is_not_sent_again(tmp_path, fake, how):
    settings = _settings(tmp_path, fake.url)
    log = tmp_path / "access.log"
    manifest = make_log(log, 1500, seed=4)
    _import(settings, log)
    posts = fake.bulk_posts
    data = log.read_bytes()
    if how == "rename":
        target = tmp_path / "access.log.1"
        log.rename(target)
    elif how == "copy":
        target = tmp_path / "backup.log"
        shutil.copy(log, target)
    elif how == "gzip":
        target = tmp_path / "access.log.1.gz"
        target.write_bytes(gzip.compress(data))
        log.unlink()
    elif how == "bz2":
        target = tmp_path / "access.log.2.bz2"
        target.write_bytes(bz2.compress(data))
    elif how == "xz":
        target = tmp_path / "access.log.3.xz"
        target.write_bytes(lzma.compress(data))
    else:  # logrotate's dateext + delaycompress naming, told by content not name
        target = tmp_path / "access.log-20240315.1"
        target.write_bytes(gzip.compress(data))
    again = _import(settings, target)
    assert again.message.startswith("already imported")
    assert fake.bulk_posts == posts
    _exactly_once(fake, manifest["tracked"])
    # the ledger follows the content to its new name
    with open_ledger(settings) as ledger:
        (record,) = ledger.list_files(site_id=1)
        assert record.path == os.path.realpath(target)


def test_a_live_log_that_grew_then_was_rotated_and_compressed_continues(tmp_path, fake, ledger_url):
    settings = _settings(tmp_path, fake.url, ledger_url)
    full = tmp_path / "full.log"
    manifest = make_log(full, 2400, seed=5)
    lines = full.read_bytes().splitlines(keepends=True)
    live = tmp_path / "access.log"
    live.write_bytes(b"".join(lines[:900]))  # the import ran while the log was being written
    first = _import(settings, live)
    assert first.status == FILE_LOADED
    sent = len(fake.pv_ids(1))
    # logrotate: access.log -> access.log.1 (with the rest of the day), then gzip
    rotated = tmp_path / "access.log.1.gz"
    rotated.write_bytes(gzip.compress(full.read_bytes()))
    live.unlink()
    second = _import(settings, rotated)
    assert second.status == FILE_LOADED and "grew" in second.message
    assert second.already_delivered == sent
    _exactly_once(fake, manifest["tracked"])
    posts = fake.bulk_posts
    assert _import(settings, full).message.startswith("already imported")  # the plain copy too
    assert fake.bulk_posts == posts


def test_an_older_shorter_copy_of_a_delivered_log_sends_nothing(tmp_path, fake):
    settings = _settings(tmp_path, fake.url)
    log = tmp_path / "access.log"
    manifest = make_log(log, 3000, seed=6)  # > 64 KiB: the fingerprint covers a prefix
    _import(settings, log)
    posts = fake.bulk_posts
    older = tmp_path / "access.log.old"
    older.write_bytes(b"".join(log.read_bytes().splitlines(keepends=True)[:2000]))
    assert _import(settings, older).message.startswith("already imported")
    assert fake.bulk_posts == posts
    _exactly_once(fake, manifest["tracked"])


def test_dagster_day_pipeline_after_compress_and_rename_sends_nothing_again(tmp_path, fake):
    """The steps the Dagster assets run (queue_day, import_day) over a log directory where a
    delivered day's log is compressed and renamed by logrotate."""
    logs = tmp_path / "logs"
    logs.mkdir()
    manifest = make_log(logs / "access-2024-03-14.log", 1500, seed=8, date="2024-03-14", tz="+0000")
    sites_file = tmp_path / "sites.yaml"
    sites_file.write_text(
        "sites:\n  - id: 1\n    key: web\n    name: Web\n    main_url: https://example.org\n    log_dir: logs\n    file_pattern: 'access-*'\n"
        "    timezone: UTC\n    start_date: 2024-03-01\n    expected_files: [{from: 2024-03-01, count: 1}]\n")
    (site,) = load_sites(str(sites_file))
    settings = _settings(tmp_path, fake.url)
    import datetime as dt

    day = dt.date(2024, 3, 14)
    with open_ledger(settings) as ledger:
        pipeline.queue_day(ledger, site, day)
        first = pipeline.import_day(settings, ledger, site, day, policy=FAST)
        assert first.status == "loaded"
        posts = fake.bulk_posts
        original = logs / "access-2024-03-14.log"
        (logs / "access-2024-03-14.log.1.gz").write_bytes(gzip.compress(original.read_bytes()))
        original.unlink()
        pipeline.queue_day(ledger, site, day)
        again = pipeline.import_day(settings, ledger, site, day, policy=FAST)
        assert again.status == "loaded"
        assert [f.status for f in ledger.files_feeding_day(1, day)] == [FILE_LOADED]
    assert fake.bulk_posts == posts
    _exactly_once(fake, manifest["tracked"])


# --- 2. delivery state belongs to a destination ----------------------------------------------------
def test_outbox_then_matomo_then_another_matomo_each_get_every_hit_once(tmp_path, fake, ledger_url):
    log = tmp_path / "access.log"
    manifest = make_log(log, 900, seed=9)
    offline = _settings(tmp_path, None, ledger_url)
    assert _import(offline, log).status == FILE_LOADED
    assert len(set(_outbox_pv_ids(offline))) == manifest["tracked"]
    online = _settings(tmp_path, fake.url, ledger_url)
    to_matomo = _import(online, log)
    assert to_matomo.status == FILE_LOADED and to_matomo.delivered == manifest["tracked"]
    _exactly_once(fake, manifest["tracked"])
    posts = fake.bulk_posts
    assert _import(online, log).message.startswith("already imported")
    assert _import(offline, log).message.startswith("already imported")
    assert fake.bulk_posts == posts
    assert len(_outbox_pv_ids(offline)) == manifest["tracked"]
    with FakeMatomo(token=TOKEN, sites=SITES) as other:
        elsewhere = _settings(tmp_path, other.url, ledger_url)
        assert _import(elsewhere, log).delivered == manifest["tracked"]
        assert other.duplicates() == {} and len(other.pv_ids(1)) == manifest["tracked"]
    # the same hits carry the same pv_ids everywhere (one content, one identity)
    assert sorted(fake.pv_ids(1)) == sorted(_outbox_pv_ids(offline))
    # each destination has its own day table
    with open_ledger(online) as a, open_ledger(offline) as b:
        assert [d.status for d in a.day_statuses(1)] == [d.status for d in b.day_statuses(1)] == ["loaded"]


@pytest.mark.parametrize("env, message", [
    ({"MATOMO_URL": ""}, "MATOMO_URL is set but empty"),
    ({"MATOMO_URL": "  "}, "MATOMO_URL is set but empty"),
    ({"MATOMO_API_TOKEN": "x"}, "MATOMO_API_TOKEN is set but MATOMO_URL is not"),
])
def test_production_config_without_a_matomo_fails_loudly(env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_outbox_is_an_explicit_opt_in_and_urls_are_spelled_one_way(tmp_path):
    assert load_settings(environ={"MATOMO_URL": "outbox:"}).destination == "outbox"
    assert load_settings(environ={"MATOMO_URL": "OUTBOX:", "MATOMO_API_TOKEN": "x"}).offline
    assert load_settings(environ={}).destination == "outbox"
    a = load_settings(environ={"MATOMO_URL": "HTTPS://Stats.Example.org:443/index.php", "MATOMO_API_TOKEN": "s3cr3t-tok"})
    b = load_settings(environ={"MATOMO_URL": "https://stats.example.org/", "MATOMO_API_TOKEN": "s3cr3t-tok"})
    assert a.destination == b.destination == "matomo:https://stats.example.org"
    assert "s3cr3t-tok" not in repr(a) + a.destination


def test_the_cli_reads_dotenv_like_dagster_dev(tmp_path, fake, monkeypatch):
    from analytics_ingest.cli.main import main

    log = tmp_path / "access.log"
    manifest = make_log(log, 400, seed=10)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text(f"# local settings\nMATOMO_URL={fake.url}\nMATOMO_API_TOKEN='{TOKEN}'\n")
    # .env values land in os.environ: give the test its own copy so none leaks into later tests
    monkeypatch.setattr(os, "environ", dict(os.environ))
    for name in ("MATOMO_URL", "MATOMO_API_TOKEN", "ANALYTICS_INGEST_LEDGER_URL"):
        os.environ.pop(name, None)
    os.environ["ANALYTICS_INGEST_HOME"] = str(tmp_path / "home")
    monkeypatch.chdir(project)
    assert main(["import", str(log), "--site", "1", "--no-progress"]) == 0
    _exactly_once(fake, manifest["tracked"])
    assert "MATOMO_URL" not in os.environ or os.environ["MATOMO_URL"] == fake.url


# --- 3. a lease fences the ledger --------------------------------------------------------------------
def test_a_stale_lease_generation_can_write_no_checkpoint(ledger_url):
    with Ledger(ledger_url) as ledger:
        record = ledger.register_file(path="/logs/a.log", site_id=1, size=10, fingerprint="f", fingerprint_len=10)
        old = ledger.acquire_lease(record.id, "frozen", 0.05)
        ledger.mark_in_flight(record.id, 0, 100, fence=("frozen", old))
        time.sleep(0.1)
        new = ledger.acquire_lease(record.id, "successor", 60)
        assert new == old + 1
        ledger.mark_in_flight(record.id, 0, 200, delivered_through=100, fence=("successor", new))
        with pytest.raises(LeaseLost):
            ledger.mark_in_flight(record.id, 0, 150, delivered_through=50, fence=("frozen", old))
        assert not ledger.renew_lease(record.id, "frozen", 60, old)
        assert ledger.lanes(record.id) == {0: (100, 200)}  # the successor's checkpoint stands


def _cli(log, home, url, *extra, ledger_url=None):
    env = {**os.environ, "MATOMO_URL": url, "MATOMO_API_TOKEN": TOKEN, "ANALYTICS_INGEST_HOME": str(home),
           "ANALYTICS_INGEST_PARALLEL_MIN_BYTES": str(1 << 40)}
    env.pop("ANALYTICS_INGEST_LEDGER_URL", None)
    if ledger_url:
        env["ANALYTICS_INGEST_LEDGER_URL"] = ledger_url
    cmd = [sys.executable, "-m", "analytics_ingest.cli.main", "import", str(log), "--site", "1", "--recorders", "2",
           "--batch-size", "40", "--retry-delay", "0.01", "--json", "--no-progress", *extra]
    return cmd, env


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_an_importer_frozen_past_its_lease_resumes_and_sends_nothing(tmp_path, ledger_url):
    log = tmp_path / "access.log"
    manifest = make_log(log, 3000, seed=12)
    with FakeMatomo(token=TOKEN, sites=SITES) as fake:
        fake.inject("slow", on_post=None, times=10_000, seconds=0.03)
        # One lane, frozen while its POST is in the server: not inside a ledger transaction, whose
        # row lock would hold up the successor (a frozen process holding a lock is another story).
        cmd, env = _cli(log, tmp_path / "home", fake.url, "--lease-ttl", "2", "--settle-wait", "0.5",
                        "--recorders", "1", ledger_url=ledger_url)
        frozen = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait(lambda: fake.bulk_posts >= 10 and fake.bulk_in_flight > 0)
            os.kill(frozen.pid, signal.SIGSTOP)
            time.sleep(3)  # past its 2 s lease
            successor = subprocess.run([*cmd, "--wait", "30"], env=env, capture_output=True, text=True, timeout=180)
            assert successor.returncode == 0, successor.stderr
            posts = fake.bulk_posts
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        out, err = frozen.communicate(timeout=60)
        assert frozen.returncode == 1, err
        assert "lease" in json.loads(out)["files"][0]["message"]
        assert fake.bulk_posts == posts  # the resumed owner sent nothing more
        _exactly_once(fake, manifest["tracked"])
        with Ledger(ledger_url, destination=f"matomo:{fake.url}") as ledger:
            assert [f.status for f in ledger.list_files(site_id=1)] == [FILE_LOADED]  # not rewound
        # and the successor's checkpoints were not rewound: a rerun sends nothing
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and fake.bulk_posts == posts


# --- 4. a batch in doubt is settled only once it can no longer commit --------------------------------
@pytest.mark.parametrize("settle_wait, duplicates_expected", [(2.5, False), (0.0, True)],
                         ids=["waits-out-the-server", "control-no-wait"])
def test_a_server_still_committing_after_the_client_gave_up(tmp_path, settle_wait, duplicates_expected):
    log = tmp_path / "access.log"
    manifest = make_log(log, 600, seed=13)
    with FakeMatomo(token=TOKEN, sites=SITES) as fake:
        fake.inject("commit_late", on_post=3, seconds=1.5)
        policy = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, read_timeout=0.5,
                             settle_wait=settle_wait, settle_interval=0.05)
        result = _import(_settings(tmp_path, fake.url), log, policy=policy)
        assert fake.wait_bulk_idle(10)
        assert result.status == FILE_LOADED
        if duplicates_expected:  # the fault is real: without waiting, the late commit doubles the batch
            assert fake.duplicates() != {}
        else:
            _exactly_once(fake, manifest["tracked"])
            assert result.already_present > 0


def test_kill_minus_9_while_the_server_commits_then_an_immediate_rerun(tmp_path, ledger_url):
    log = tmp_path / "access.log"
    manifest = make_log(log, 2000, seed=14)
    with FakeMatomo(token=TOKEN, sites=SITES, commit_delay=1.0) as fake:
        cmd, env = _cli(log, tmp_path / "home", fake.url, "--settle-wait", "2.5", ledger_url=ledger_url)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait(lambda: fake.bulk_posts >= 6 and fake.bulk_in_flight > 0)
        os.kill(proc.pid, signal.SIGKILL)  # the server goes on committing what was in flight
        proc.communicate(timeout=30)
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        assert rerun.returncode == 0, rerun.stderr
        assert fake.wait_bulk_idle(10)
        _exactly_once(fake, manifest["tracked"])


# --- 5. settling does not depend on the visitor's IP --------------------------------------------------
@pytest.mark.parametrize("masked_bytes", [2, 3])
def test_settling_with_ip_anonymisation_sends_nothing_twice(tmp_path, masked_bytes):
    log = tmp_path / "access.log"
    manifest = make_log(log, 900, seed=15)
    with FakeMatomo(token=TOKEN, sites=SITES, anonymize_ip_bytes=masked_bytes) as fake:
        fake.inject("500_after_commit", on_post=2)
        fake.inject("timeout_after_commit", on_post=5, seconds=2)
        result = _import(_settings(tmp_path, fake.url), log)
        assert result.status == FILE_LOADED and result.already_present >= 50
        assert fake.wait_bulk_idle(10)
        _exactly_once(fake, manifest["tracked"])


# --- 6. unusable input is refused, not "loaded" -------------------------------------------------------
def _cli_offline(tmp_path, monkeypatch, *argv):
    from analytics_ingest.cli.main import main

    for name in ("MATOMO_URL", "MATOMO_API_TOKEN", "ANALYTICS_INGEST_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return main(["import", *argv, "--site", "1", "--no-progress", "--home", str(tmp_path / "home")])


@pytest.mark.parametrize("kind", ["random-bytes", "nginx-error-log", "services", "wrong-format"])
def test_unusable_input_exits_2_sends_nothing_and_stays_importable(tmp_path, monkeypatch, capsys, kind):
    good = tmp_path / "access.log"
    manifest = make_log(good, 600, seed=16)
    bad = tmp_path / "input.log"
    extra = []
    if kind == "random-bytes":
        bad.write_bytes(os.urandom(200_000))
    elif kind == "nginx-error-log":
        bad.write_text("".join(
            f"2024/03/14 10:{i % 60:02d}:01 [error] 1234#0: *{i} open() \"/srv/www/favicon.ico\" failed "
            "(2: No such file or directory), client: 10.0.0.1, server: example.org\n" for i in range(300)))
    elif kind == "services":
        bad.write_text("".join(f"svc{i}\t{i}/tcp\t\t\t# service number {i}\n" for i in range(1, 400)))
    else:
        shutil.copy(good, bad)
        extra = ["--format", "w3c_extended"]
    code = _cli_offline(tmp_path, monkeypatch, str(good), str(bad), *extra)
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "format" in err
    assert not (tmp_path / "home" / "outbox" / "site-1.jsonl").exists()  # nothing sent, not even good.log
    # the refusal recorded nothing that would skip the file later: with a usable format it imports
    if kind == "wrong-format":
        assert _cli_offline(tmp_path, monkeypatch, str(bad)) == 0
        sent = _outbox_pv_ids(_settings(tmp_path))
        assert len(sent) == len(set(sent)) == manifest["tracked"]


def test_absurd_dates_are_invalid_lines_and_never_ledger_days(tmp_path, fake):
    log = tmp_path / "access.log"
    manifest = make_log(log, 500, seed=17, date="2024-03-14", tz="+0000")
    lines = log.read_bytes().splitlines(keepends=True)
    absurd = [lines[i].replace(b"/2024:", year) for i, year in ((3, b"/0001:"), (4, b"/1970:"), (5, b"/9999:"))]
    log.write_bytes(b"".join(lines[:3] + absurd + lines[6:]))
    result = _import(_settings(tmp_path, fake.url), log)
    assert result.status == FILE_LOADED
    assert result.invalid_reasons.get("date_out_of_range") == 3
    assert set(result.days) == {"2024-03-14"}
    with open_ledger(_settings(tmp_path, fake.url)) as ledger:
        assert {d.day.isoformat() for d in ledger.day_statuses(1)} == {"2024-03-14"}
    assert fake.duplicates() == {}
    assert len(fake.pv_ids(1)) <= manifest["tracked"]


def test_empty_logs_of_two_days_stay_two_files(tmp_path, fake):
    settings = _settings(tmp_path, fake.url)
    for name in ("access.log.2024-03-14", "access.log.2024-03-15"):
        (tmp_path / name).write_bytes(b"")
        assert _import(settings, tmp_path / name).status == FILE_LOADED
    with open_ledger(settings) as ledger:
        assert sorted(f.path for f in ledger.list_files(site_id=1)) == [
            str(tmp_path / "access.log.2024-03-14"), str(tmp_path / "access.log.2024-03-15")]
    assert fake.bulk_posts == 0


def test_a_rerun_over_delivered_gz_logs_does_not_decompress_them(tmp_path, fake, monkeypatch):
    """The README's daily `import access.log*`: a byte-identical .gz is known by its digest."""
    from analytics_ingest.logs import content

    settings = _settings(tmp_path, fake.url)
    log = tmp_path / "access.log.1.gz"
    plain = tmp_path / "plain.log"
    make_log(plain, 1500, seed=18)
    log.write_bytes(gzip.compress(plain.read_bytes()))
    assert _import(settings, log).status == FILE_LOADED
    decompressed = []
    real = content.content_size
    monkeypatch.setattr(content, "content_size", lambda *a: decompressed.append(a) or real(*a))
    posts = fake.bulk_posts
    assert _import(settings, log).message.startswith("already imported")
    assert decompressed == [] and fake.bulk_posts == posts
    # another compression of the same content is still recognised (by its size, once), then by digest
    other = tmp_path / "access.log.1.bz2"
    other.write_bytes(bz2.compress(plain.read_bytes()))
    assert _import(settings, other).message.startswith("already imported") and len(decompressed) == 1
    assert _import(settings, other).message.startswith("already imported") and len(decompressed) == 1
    assert fake.bulk_posts == posts
