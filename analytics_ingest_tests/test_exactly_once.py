"""Exactly-once delivery into a fake Matomo: faults, reruns, resumes, leases, determinism."""

from __future__ import annotations

import collections
import threading

import pytest

from analytics_ingest.config import load_settings
from analytics_ingest.engine import make_importer, open_ledger
from analytics_ingest.errors import ConfigError, InputError, LeaseHeld
from analytics_ingest.matomo.batches import Batch
from analytics_ingest.matomo.retry import RetryPolicy
from analytics_ingest.vocabulary import DAY_LOADED, FILE_LOADED, FILE_PARTIAL
from analytics_ingest.weblogs import file_identity
from analytics_ingest.weblogs.importer import ImportOptions
from analytics_ingest.weblogs.lanes import DayGate
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN, make_log

FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, maintenance_delay=0.05, read_timeout=1.0,
                   settle_wait=0.2, settle_interval=0.05)


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("logs") / "access.log"
    manifest = make_log(path, 3000, seed=11)
    return path, manifest


def run_import(settings, path, *, options=ImportOptions(lanes=4, batch_size=50), policy=FAST, ledger=None,
               parallel=False, **kw):
    own = ledger is None
    ledger = ledger or open_ledger(settings)
    try:
        with make_importer(settings, ledger, 1, policy=policy, parallel=parallel) as importer:
            if parallel:  # force worker processes even for a small file, with many small jobs
                importer.parallel_min_bytes, importer.job_lines = 0, 700
            return importer.import_file(str(path), options, **kw)
    finally:
        if own:
            ledger.close()


def assert_exactly_once(fake, manifest):
    assert fake.duplicates() == {}
    assert len(fake.pv_ids(1)) == manifest["tracked"]


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker-processes"])
def test_import_counts_match_manifest_and_rerun_is_a_no_op(settings, fake, log_file, parallel):
    path, manifest = log_file
    result = run_import(settings, path, parallel=parallel)
    assert result.status == FILE_LOADED and result.complete
    assert result.lines_total == manifest["lines"]
    assert result.tracked == manifest["tracked"]
    assert result.ignored["bots"] == manifest["bots"]
    assert result.ignored["static"] == manifest["static"]
    assert result.ignored["http_errors"] == manifest["http_errors"]
    assert result.ignored["http_redirects"] == manifest["http_redirects"]
    assert result.invalid == manifest["invalid"]
    assert result.lines_total == result.tracked + sum(result.ignored.values()) + result.invalid
    assert_exactly_once(fake, manifest)
    posts = fake.bulk_posts
    again = run_import(settings, path)
    assert again.message.startswith("already imported")
    assert fake.bulk_posts == posts
    assert_exactly_once(fake, manifest)
    ledger = open_ledger(settings)
    try:
        statuses = {(r.day.isoformat(), r.status) for r in ledger.day_statuses(site_id=1)}
    finally:
        ledger.close()
    assert statuses and all(status == DAY_LOADED for _day, status in statuses)


@pytest.mark.parametrize(
    "kind, params",
    [
        ("500_before_commit", {}),
        ("500_after_commit", {}),
        ("500_after_commit", {"body": "html"}),
        ("timeout_before_commit", {"seconds": 1.5}),
        ("timeout_after_commit", {"seconds": 1.5}),
        ("reset", {}),
        ("html_200", {}),
        ("html_200", {"body": "gif"}),
        ("skip_some", {"positions": [0, 7, 30]}),
        ("maintenance_503", {"retry_after": 0.05}),
    ],
)
def test_faults_never_lose_or_double_a_hit(settings, fake, log_file, kind, params):
    path, manifest = log_file
    fake.inject(kind, on_post=3, times=2, **params)
    fake.inject(kind, on_post=11, times=1, **params)
    result = run_import(settings, path, parallel=kind.startswith("500"))
    assert result.status == FILE_LOADED, result.message
    assert_exactly_once(fake, manifest)


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker-processes"])
def test_exhausted_retries_keep_progress_and_a_rerun_finishes_exactly_once(settings, fake, log_file, parallel):
    path, manifest = log_file
    # Let some batches through, then fail every POST: some after Matomo committed them (the
    # look-up finds those), the rest before, until the retry budget runs out.
    fake.inject_fn(lambda n, reqs: None if n < 8 else ("500_after_commit" if n % 5 == 0 else "500_before_commit"))
    first = run_import(settings, path, parallel=parallel)
    assert first.status == FILE_PARTIAL
    assert "rerun" in first.message
    assert 0 < len(fake.pv_ids(1)) < manifest["tracked"]
    fake.inject_fn(None)
    second = run_import(settings, path, parallel=parallel)
    assert second.status == FILE_LOADED, second.message
    assert second.already_delivered > 0
    assert_exactly_once(fake, manifest)


def test_grown_file_sends_only_new_lines(settings, fake, tmp_path):
    full = tmp_path / "full.log"
    manifest = make_log(full, 2000, seed=3)
    lines = full.read_bytes().splitlines(keepends=True)
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(lines[:1200]))
    first = run_import(settings, path)
    assert first.status == FILE_LOADED
    sent = len(fake.pv_ids(1))
    path.write_bytes(b"".join(lines))
    second = run_import(settings, path)
    assert second.status == FILE_LOADED and "grew" in second.message
    assert second.already_delivered == sent
    assert_exactly_once(fake, manifest)


def test_new_content_at_a_known_path_is_a_new_file_and_a_rewritten_one_is_refused_unless_forced(
        settings, fake, tmp_path):
    path = tmp_path / "access.log"
    first = make_log(path, 300, seed=1)
    first_lines = path.read_bytes().splitlines(keepends=True)
    run_import(settings, path)
    # logrotate's copytruncate: other content under the same name is another file, imported as such
    second = make_log(path, 300, seed=2)
    rotated = run_import(settings, path)
    assert rotated.status == FILE_LOADED and rotated.tracked == second["tracked"]
    assert fake.duplicates() == {}
    assert len(fake.pv_ids(1)) == first["tracked"] + second["tracked"]
    # the first file re-written in place: same first line, different content after it
    other_lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(first_lines[0] + b"".join(other_lines[1:]))
    posts = fake.bulk_posts
    with pytest.raises(InputError, match="starts like .* content differs.*--force"):
        run_import(settings, path)
    assert fake.bulk_posts == posts
    forced = run_import(settings, path, force=True)
    assert forced.status == FILE_LOADED and "another file" in forced.message
    assert fake.duplicates() == {}


def test_a_second_import_of_the_same_file_cannot_send(settings, fake, log_file):
    path, _manifest = log_file
    ledger = open_ledger(settings)
    try:
        record = file_identity.identify(ledger, 1, str(path)).record  # as the sensor registers it
        assert ledger.acquire_lease(record.id, "sensor-run-42", 60)
        with pytest.raises(LeaseHeld, match="sensor-run-42"):
            run_import(settings, path, ledger=ledger)
    finally:
        ledger.close()
    assert fake.bulk_posts == 0


def test_concurrent_imports_of_one_file_deliver_once(settings, fake, log_file):
    path, manifest = log_file
    fake.inject("slow", on_post=None, times=10_000, seconds=0.01)
    outcomes = []

    def worker():
        ledger = open_ledger(settings)
        try:
            importer = make_importer(settings, ledger, 1, policy=FAST, lease_wait=60)
            outcomes.append(importer.import_file(str(path), ImportOptions(lanes=2, batch_size=50)))
        finally:
            ledger.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.message.startswith("already imported") for o in outcomes) == [False, True, True]
    assert_exactly_once(fake, manifest)


def _visitor_sequences(fake):
    seqs = collections.defaultdict(list)
    for h in sorted(fake.hits(1), key=lambda h: h["_order"]):
        seqs[h.get("uid") or h["cip"]].append((h["cdt"], h["url"], h.get("ua")))
    return dict(seqs)


def test_every_visitor_arrives_in_log_order_whatever_the_lanes(tmp_path, log_file):
    path, manifest = log_file
    sequences = []
    for lanes in (1, 4):
        with FakeMatomo(token=TOKEN, sites=SITES) as fake:
            settings = load_settings(home=tmp_path / f"h{lanes}", matomo_url=fake.url, matomo_token=TOKEN, environ={})
            run_import(settings, path, options=ImportOptions(lanes=lanes, batch_size=37))
            sequences.append(_visitor_sequences(fake))
            assert_exactly_once(fake, manifest)
    assert sequences[0] == sequences[1]


def test_day_gate_lets_the_first_batch_of_a_day_finish_first():
    gate = DayGate("UTC")
    stop = threading.Event()
    batch = Batch.from_items(0, [(1, "aaaaaa", "1.2.3.4", "2024-03-14 10:00:00", "{}")])
    assert gate.days_of(batch) == {"2024-03-14"}
    claimed = gate.enter({"2024-03-14"}, stop)
    assert claimed == {"2024-03-14"}
    entered = threading.Event()

    def other():
        gate.enter({"2024-03-14", "2024-03-15"}, stop)
        entered.set()

    t = threading.Thread(target=other)
    t.start()
    assert not entered.wait(0.3)  # waits while the day is being opened
    gate.leave(claimed, opened=True)
    assert entered.wait(2)
    t.join()


def test_day_gate_uses_the_site_timezone():
    gate = DayGate("Europe/Paris")
    batch = Batch.from_items(0, [(1, "aaaaaa", "1.2.3.4", "2024-03-14 23:30:00", "{}")])
    assert gate.days_of(batch) == {"2024-03-15"}


def test_bad_configuration_fails_before_any_hit(tmp_path, fake, log_file):
    path, _ = log_file
    wrong = load_settings(home=tmp_path / "a", matomo_url=fake.url, matomo_token="nope", environ={})
    with pytest.raises(ConfigError, match="refused site 1"):
        run_import(wrong, path)
    unknown = load_settings(home=tmp_path / "b", matomo_url=fake.url, matomo_token=TOKEN, environ={})
    ledger = open_ledger(unknown)
    try:
        with pytest.raises(ConfigError, match="42"):
            make_importer(unknown, ledger, 42)
    finally:
        ledger.close()
    down = load_settings(home=tmp_path / "c", matomo_url="http://127.0.0.1:9", matomo_token=TOKEN, environ={})
    with pytest.raises(ConfigError, match="not reachable"):
        run_import(down, path)
    assert fake.bulk_posts == 0


def test_ledger_on_every_database(ledger_url, tmp_path, fake, log_file):
    path, manifest = log_file
    settings = load_settings(home=tmp_path / "h", ledger_url=ledger_url, matomo_url=fake.url,
                             matomo_token=TOKEN, environ={})
    fake.inject("500_after_commit", on_post=2)
    result = run_import(settings, path)
    assert result.status == FILE_LOADED
    assert run_import(settings, path).message.startswith("already imported")
    assert_exactly_once(fake, manifest)


def test_truncated_gzip_is_partial_then_the_complete_file_finishes_exactly_once(settings, fake, tmp_path):
    import gzip

    source = tmp_path / "src.log"
    manifest = make_log(source, 3000, seed=21)
    whole = gzip.compress(source.read_bytes())
    path = tmp_path / "access.log.gz.1"  # gzip recognised by content, not by name
    path.write_bytes(whole[: len(whole) * 2 // 3])  # rsync caught it half-way
    first = run_import(settings, path)
    assert first.status == FILE_PARTIAL and first.incomplete
    assert "truncated" in first.message or "ends early" in first.message
    assert 0 < len(fake.pv_ids(1)) < manifest["tracked"]
    path.write_bytes(whole)  # the complete file arrives: same prefix, larger
    second = run_import(settings, path)
    assert second.status == FILE_LOADED, second.message
    assert_exactly_once(fake, manifest)
