"""The hit store: each imported file's tracked hits as columns, read back per site-local day by the
pretable, the usage aggregate and the archive check instead of re-parsing the logs.

What must hold: the store the import's worker processes write equals the one rebuilt from the log;
it follows the file's content (a grown file is read again); a day is the site's local day (DST
included) less the lines Matomo rejected; a store that cannot be written never stops an import;
a log that is gone is no loss while its store is there; and the columnar TSV and session rules
give what the row-wise rules give.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_ingest.config import load_settings
from analytics_ingest.engine import open_ledger
from analytics_ingest.errors import InputError
from analytics_ingest.pretable import build_pretable, matomo_rules
from analytics_ingest.pretable.agents import agents_cache_path
from analytics_ingest.pretable.schema import parquet_schema
from analytics_ingest.pretable.tsv import tsv_lines, tsv_value
from analytics_ingest.sites import load_sites
from analytics_ingest.usage.daily import SESSION_GAP_SECONDS, _visits
from analytics_ingest.weblogs import hit_store, parallel, pipeline
from analytics_ingest.weblogs.day_hits import DayHits, hit_store_dir
from analytics_ingest_tests.helpers import make_log

DAY = dt.date(2024, 3, 14)
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36"
USES_WORKERS = parallel.worker_count() >= 2  # big files are parsed (and their parts written) by workers


def _site(tmp_path: Path, tz: str = "UTC", *, workers: bool = True):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    path = tmp_path / "sites.yaml"
    path.write_text(f"sites:\n  - id: 1\n    key: web\n    name: Web\n    main_url: https://example.org\n"
                    f"    log_dir: {logs}\n    file_pattern: 'access*'\n    timezone: {tz}\n    start_date: 2024-03-01\n"
                    "    pretable: {wait_for_neighbours: false}\n")
    # parallel_min_bytes 0: every file is parsed by worker processes, which write the store
    environ = {"ANALYTICS_INGEST_PARALLEL_MIN_BYTES": "0" if workers else str(1 << 40)}
    settings = load_settings(home=tmp_path / "home", environ=environ)  # offline: the outbox
    return load_sites(path)[0], settings, logs


def _import(settings, site, day: dt.date, *, day_status: str = "loaded"):
    with open_ledger(settings) as ledger:
        pipeline.queue_day(ledger, site, day)
        report = pipeline.import_day(settings, ledger, site, day)
    assert report.status == day_status, report.errors
    return report


def _record(settings, site, day):
    with open_ledger(settings) as ledger:
        (record,) = ledger.files_feeding_day(site.id, day)
    return record


def _store_rows(settings, record) -> pa.Table:
    store = hit_store.open_store(hit_store.store_path(hit_store_dir(settings), record.id), hit_store.record_key(record))
    assert store is not None
    return pa.concat_tables(store.tables(hit_store.COLUMNS)).combine_chunks()


def _day_rows(settings, site, day) -> tuple[pa.Table, object]:
    with open_ledger(settings) as ledger:
        day_hits = DayHits(hit_store_dir(settings), ledger, site, day)
        tables = [t for _r, t in day_hits.tables()]
    return pa.concat_tables(tables).combine_chunks(), day_hits.stats


def test_the_store_the_workers_write_equals_the_one_rebuilt_from_the_log(tmp_path):
    site, settings, logs = _site(tmp_path)
    manifest = make_log(logs / f"access.log.{DAY}", 25_000, seed=3, date=DAY.isoformat(), tz="+0000")
    _import(settings, site, DAY)
    record = _record(settings, site, DAY)
    folder = hit_store.store_path(hit_store_dir(settings), record.id)
    assert folder.is_dir()
    with open_ledger(settings) as ledger:
        first = build_pretable(settings, ledger, site, DAY)
    tsv_from_import = Path(first.tsv).read_bytes()
    parts_from_import = len(list(folder.glob(f"part-*{hit_store.PART_SUFFIX}")))
    from_import = _store_rows(settings, record)
    assert from_import.num_rows == manifest["tracked"]
    assert from_import.column("line_no").to_pylist() == sorted(from_import.column("line_no").to_pylist())

    shutil.rmtree(folder)
    rows, stats = _day_rows(settings, site, DAY)
    assert stats.stores_rebuilt == 1 and rows.num_rows == manifest["tracked"]
    assert _store_rows(settings, record).equals(from_import)
    if USES_WORKERS:
        assert parts_from_import > len(list(folder.glob(f"part-*{hit_store.PART_SUFFIX}")))  # one part per worker job vs a few
    with open_ledger(settings) as ledger:
        again = build_pretable(settings, ledger, site, DAY)
    assert Path(again.tsv).read_bytes() == tsv_from_import
    assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_log_that_is_gone_is_no_loss_while_its_store_is_there(tmp_path):
    site, settings, logs = _site(tmp_path, workers=False)
    log = logs / f"access.log.{DAY}"
    manifest = make_log(log, 2000, seed=5, date=DAY.isoformat(), tz="+0000")
    _import(settings, site, DAY)
    record = _record(settings, site, DAY)
    folder = hit_store.store_path(hit_store_dir(settings), record.id)
    assert folder.is_dir()  # parsed in the importing process, which wrote the store
    with open_ledger(settings) as ledger:
        first = build_pretable(settings, ledger, site, DAY)
    assert first.rows > 0
    log.unlink()
    with open_ledger(settings) as ledger:
        second = build_pretable(settings, ledger, site, DAY)
    assert Path(second.tsv).read_text() == Path(first.tsv).read_text() and second.missing_files == []
    rows, stats = _day_rows(settings, site, DAY)
    assert rows.num_rows == manifest["tracked"] and stats.missing_files == []
    shutil.rmtree(folder)  # the store lost with its disk as well: now the hits cannot be read
    with open_ledger(settings) as ledger, pytest.raises(InputError, match="are gone") as info:
        build_pretable(settings, ledger, site, DAY)
    assert "\n" not in str(info.value)


def test_a_file_that_grew_is_read_again(tmp_path):
    site, settings, logs = _site(tmp_path, workers=False)
    log = logs / f"access.log.{DAY}"
    lines = [f'81.2.69.{i % 200} - - [14/Mar/2024:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] "GET /p/{i} HTTP/1.1" '
             f'200 512 "-" "{UA}"\n' for i in range(300)]
    log.write_text("".join(lines[:200]))
    _import(settings, site, DAY)
    rows, stats = _day_rows(settings, site, DAY)
    assert rows.num_rows == 200 and stats.stores_rebuilt == 0
    with open(log, "a") as fh:
        fh.write("".join(lines[200:]))
    report = _import(settings, site, DAY)
    assert report.totals()["delivered"] == 100
    rows, stats = _day_rows(settings, site, DAY)
    assert rows.num_rows == 300 and stats.stores_rebuilt == 0  # the second import stored the grown content
    manifest = hit_store.store_path(hit_store_dir(settings), _record(settings, site, DAY).id) / hit_store.MANIFEST
    manifest.write_text(manifest.read_text().replace('"key": "', '"key": "x'))  # a store of another content
    rows, stats = _day_rows(settings, site, DAY)
    assert rows.num_rows == 300 and stats.stores_rebuilt == 1
    assert rows.column("path").to_pylist() == [f"/p/{i}" for i in range(300)]


def test_a_day_is_the_sites_local_day_less_the_lines_matomo_rejected(tmp_path):
    # Paris on the night clocks go forward: 31 March 2024 has 23 hours. The file holds three UTC days.
    site, settings, logs = _site(tmp_path, tz="Europe/Paris", workers=False)
    day = dt.date(2024, 3, 31)
    start = dt.datetime(2024, 3, 30, tzinfo=dt.timezone.utc)
    stamps = [start + dt.timedelta(minutes=10 * i) for i in range(3 * 24 * 6)]
    log = logs / f"access.log.{day}"
    log.write_text("".join(f'81.2.69.{i % 200} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "GET /p/{i} HTTP/1.1" 200 512 "-" '
                           f'"{UA}"\n' for i, t in enumerate(stamps)))
    # partial: the file counts as 1 April's (most of its hits), and 31 March's own file never came
    report = _import(settings, site, day, day_status="partial")
    assert report.totals()["delivered"] == len(stamps)
    local = [i + 1 for i, t in enumerate(stamps) if t.astimezone(ZoneInfo("Europe/Paris")).date() == day]
    assert len(local) == 23 * 6
    rows, _stats = _day_rows(settings, site, day)
    assert rows.column("line_no").to_pylist() == local
    record = _record(settings, site, day)
    refused = [local[0], local[50], local[-1], 1]  # line 1 is another day's: it changes nothing here
    with open_ledger(settings) as ledger:
        ledger.add_rejected_lines(record.id, refused)
    rows, stats = _day_rows(settings, site, day)
    assert rows.column("line_no").to_pylist() == [n for n in local if n not in refused]
    assert stats.rejected_skipped == 3


def test_a_store_that_cannot_be_written_never_stops_the_import(tmp_path, monkeypatch):
    if not USES_WORKERS:
        pytest.skip("one CPU: no worker processes to refuse the parts")
    site, settings, logs = _site(tmp_path)
    manifest = make_log(logs / f"access.log.{DAY}", 12_000, seed=9, date=DAY.isoformat(), tz="+0000")

    def full_disk(directory, columns):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(parallel, "write_part", full_disk)  # the worker processes fork with it
    report = _import(settings, site, DAY)
    assert report.totals()["delivered"] == manifest["tracked"]
    monkeypatch.undo()
    record = _record(settings, site, DAY)
    assert not list(hit_store_dir(settings).iterdir())  # nothing published, no temporary folder left
    rows, stats = _day_rows(settings, site, DAY)  # the first reader reads the log instead
    assert rows.num_rows == manifest["tracked"] and stats.stores_rebuilt == 1
    assert hit_store.store_path(hit_store_dir(settings), record.id).is_dir()


def test_a_killed_writers_leftovers_are_swept(tmp_path):
    folder = tmp_path / "hits"
    host = hit_store._HOST
    leftover = folder / f".7.tmp-{host}.999999999.0badc0de"  # no such process on this host
    leftover.mkdir(parents=True)
    old = folder / f".7.old-{host}.999999998.0badc0df"  # a publish cut short
    old.mkdir()
    alive = folder / f".7.tmp-{host}.{os.getppid()}.12345678"  # a live process's work in progress stays
    alive.mkdir()
    elsewhere = folder / ".7.tmp-another-host.999999999.0badc0de"  # another machine's: its pids are not ours
    elsewhere.mkdir()
    writer = hit_store.HitStoreWriter(folder / "7", "key")
    assert not leftover.exists() and not old.exists() and alive.exists() and elsewhere.exists()
    assert writer.commit() and hit_store.open_store(folder / "7", "key").hits == 0
    assert alive.exists() and elsewhere.exists()
    assert hit_store.open_store(folder / "7", "another key") is None


def test_known_agents_spare_devicedetector_and_change_nothing(tmp_path, monkeypatch):
    site, settings, logs = _site(tmp_path, workers=False)
    make_log(logs / f"access.log.{DAY}", 3000, seed=12, date=DAY.isoformat(), tz="+0000")
    _import(settings, site, DAY)
    with open_ledger(settings) as ledger:
        first = build_pretable(settings, ledger, site, DAY)
    tsv = Path(first.tsv).read_bytes()
    assert agents_cache_path(settings.home).exists()

    class Refused:
        def __init__(self):
            raise AssertionError("DeviceDetector asked about an agent it answered in the last run")

    monkeypatch.setattr(matomo_rules, "MatomoBrowsers", Refused)
    with open_ledger(settings) as ledger:
        second = build_pretable(settings, ledger, site, DAY)
    assert Path(second.tsv).read_bytes() == tsv
    agents_cache_path(settings.home).write_text("{not json")  # a damaged cache is asked again
    with open_ledger(settings) as ledger, pytest.raises(AssertionError, match="DeviceDetector asked"):
        build_pretable(settings, ledger, site, DAY)


_cells = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list("ab\\\t\n\r\0 é,\"'")), max_size=6))
_numbers = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 2_000_000_000), _cells, _cells, _cells, _numbers, _numbers, _cells),
                max_size=30))
def test_columnar_tsv_is_the_row_wise_tsv(rows):
    table = pa.Table.from_arrays([
        pa.array([r[0] for r in rows], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        *(pa.array([r[i] for r in rows], pa.string()) for i in (1, 2, 3)),
        *(pa.array([r[i] for r in rows], pa.float64()) for i in (4, 5)),
        pa.array([r[6] for r in rows], pa.string()),
    ], schema=parquet_schema())
    expected = "".join(
        "\t".join([dt.datetime.fromtimestamp(r[0], dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                   *(tsv_value(v) for v in r[1:])]) + "\n" for r in rows)
    assert tsv_lines(table) == expected.encode("utf-8")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4 * SESSION_GAP_SECONDS)), max_size=40))
def test_sessions_are_matomos_thirty_minute_rule(hits):
    expected: dict[int, tuple[int, int]] = {}
    for vid in {v for v, _ in hits}:
        times = sorted(t for v, t in hits if v == vid)
        sessions = 1 + sum(1 for a, b in zip(times, times[1:]) if b - a > SESSION_GAP_SECONDS)
        expected[vid] = (len(times), sessions)
    got = _visits(np.array([v for v, _ in hits], np.int64), np.array([t for _, t in hits], np.int64))
    assert got == expected


def _one_hit_writer(folder: Path, key: str, path: str = "/a") -> hit_store.HitStoreWriter:
    from analytics_ingest.hits import Hit

    writer = hit_store.HitStoreWriter(folder / "3", key)
    writer.on_tracked(Hit(1, "81.2.69.1", "2024-03-14 10:00:00", "GET", path, 200, user_agent=UA), "pages", False)
    return writer


def test_two_writers_publishing_the_same_store_at_once_both_succeed(tmp_path, monkeypatch):
    # An import and a reader's rebuild of the same file: the import publishes between the
    # rebuild's two renames (old store aside, new store in place).
    folder = tmp_path / "hits"
    rebuild, importing = _one_hit_writer(folder, "same"), _one_hit_writer(folder, "same")
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append(Path(dst).name)
        if len(calls) == 2:  # the rebuild is about to put its folder in place
            assert importing.commit()
        return real_rename(src, dst)

    monkeypatch.setattr(hit_store.os, "rename", rename)
    assert rebuild.commit()
    monkeypatch.undo()
    store = hit_store.open_store(folder / "3", "same")
    assert store is not None and store.hits == 1
    assert sorted(p.name for p in folder.iterdir()) == ["3"]  # neither temporary folder is left

    other = _one_hit_writer(folder, "another content")  # a store of another content is not taken as ours
    other_rename_calls = []

    def rename_other(src, dst):
        other_rename_calls.append(dst)
        if len(other_rename_calls) == 2:
            assert _one_hit_writer(folder, "third").commit()
        return real_rename(src, dst)

    monkeypatch.setattr(hit_store.os, "rename", rename_other)
    with pytest.raises(OSError):
        other.commit()


def test_a_damaged_part_is_one_line_that_says_what_to_do(tmp_path):
    folder = tmp_path / "hits"
    assert _one_hit_writer(folder, "k").commit()
    (part,) = (folder / "3").glob(f"part-*{hit_store.PART_SUFFIX}")
    part.write_bytes(part.read_bytes()[:-7])
    with pytest.raises(InputError, match="is damaged .*delete the folder .*rebuilt from the log") as info:
        list(hit_store.open_store(folder / "3", "k").tables(hit_store.COLUMNS))
    assert "\n" not in str(info.value)
    part.unlink()  # replaced under the reader by a new import of the file
    with pytest.raises(InputError, match="was replaced while it was read"):
        list(hit_store.open_store(folder / "3", "k").tables(hit_store.COLUMNS))


def test_a_part_of_another_store_or_a_lost_part_is_never_read_as_this_store(tmp_path):
    folder = tmp_path / "hits"
    assert _one_hit_writer(folder, "k", "/first").commit()
    manifest = folder / "3" / hit_store.MANIFEST
    text = manifest.read_text()
    manifest.write_text(text.replace('"rows": 1', '"rows": 2'))  # a part that lost rows
    with pytest.raises(InputError, match="is damaged .*1 rows where the store lists 2"):
        list(hit_store.open_store(folder / "3", "k").tables(hit_store.COLUMNS))
    manifest.write_text(text)
    store = hit_store.open_store(folder / "3", "k")
    (name,) = store.parts
    other = tmp_path / "other"
    assert _one_hit_writer(other, "k", "/second").commit()
    shutil.copy(other / "3" / name, folder / "3" / "part-000000000000.part")  # a stray part: not listed, not read
    assert list(hit_store.open_store(folder / "3", "k").parts) == [name]
    shutil.copy(other / "3" / name, folder / "3" / name)  # another store's part under a reader's feet
    with pytest.raises(InputError, match="was replaced while it was read"):
        list(store.tables(hit_store.COLUMNS))


def test_text_arrow_cannot_hold_is_stored_with_replacement_characters(tmp_path):
    from analytics_ingest.hits import Hit

    writer = hit_store.HitStoreWriter(tmp_path / "hits" / "4", "k")
    writer.on_tracked(Hit(1, "81.2.69.1", "2024-03-14 10:00:00", "GET", "/a", 200, user_agent="Mozilla \ud83d x"),
                      "pages", False)  # a JSON log's lone surrogate, which the import sends escaped
    assert writer.commit()
    (table,) = hit_store.open_store(tmp_path / "hits" / "4", "k").tables(hit_store.COLUMNS)
    assert table.column("user_agent").cast(pa.string()).to_pylist() == ["Mozilla \ufffd\ufffd\ufffd x"]


def test_a_rebuild_stores_only_the_content_the_ledger_recorded(tmp_path):
    site, settings, logs = _site(tmp_path, workers=False)
    log = logs / f"access.log.{DAY}"
    make_log(log, 500, seed=21, date=DAY.isoformat(), tz="+0000")
    _import(settings, site, DAY)
    record = _record(settings, site, DAY)
    folder = hit_store.store_path(hit_store_dir(settings), record.id)
    shutil.rmtree(folder)
    with open(log, "a") as fh:  # lines appended after the import: not in Matomo yet
        fh.write(f'81.2.69.9 - - [14/Mar/2024:23:00:00 +0000] "GET /late HTTP/1.1" 200 5 "-" "{UA}"\n')
    with open_ledger(settings) as ledger, pytest.raises(InputError, match="no longer the content that was imported"):
        list(DayHits(hit_store_dir(settings), ledger, site, DAY).tables())
    assert not folder.exists()
    _import(settings, site, DAY)  # what the message says to do
    rows, _stats = _day_rows(settings, site, DAY)
    assert "/late" in rows.column("path").cast(pa.string()).to_pylist()


def test_rules_run_once_per_value_the_rows_still_use():
    from analytics_ingest.columns import per_value

    column = pa.array(["bot", "a", "b", "a", "bot"]).dictionary_encode()
    kept = column.filter(pa.array([False, True, True, True, False]))  # keeps the whole dictionary
    asked = []
    (answer,) = per_value(kept, lambda v: (asked.append(v) or v.upper(),), [pa.string()], {})
    assert answer.to_pylist() == ["A", "B", "A"] and sorted(asked) == ["a", "b"]


def test_known_agents_stay_bounded_and_the_recently_met_are_kept(tmp_path, monkeypatch):
    from analytics_ingest.pretable import agents

    monkeypatch.setattr(agents, "KEEP", 10)

    class Detector:  # stands in for DeviceDetector: the bound is what is tested here
        asked = 0

        def is_bot(self, agent):
            return False

        def __call__(self, agent):
            Detector.asked += 1
            return "CH", "1.0"

    facts = agents.AgentFacts(tmp_path / "agents.json")
    facts._browsers = Detector()
    for i in range(30):
        facts(f"agent-{i}")
        facts("Mozilla/5.0 everyday")  # met all the time: never forgotten
    assert len(facts._facts) <= 10 and "Mozilla/5.0 everyday" in facts._facts
    facts.save()
    again = agents.AgentFacts(tmp_path / "agents.json")
    again._browsers = Detector()
    before = Detector.asked
    assert again("Mozilla/5.0 everyday") == (False, "CH", "1.0") and Detector.asked == before


def test_action_names_follow_each_rows_host_path_and_kind():
    from analytics_ingest.pretable.from_hits import HitRows
    from analytics_ingest.pretable.matomo_rules import matomo_action, pretable_action_name

    rows = [("", "/a?utm_source=x&b=1", False), ("www.other.org", "/a?utm_source=x&b=1", False),
            ("", "/a?utm_source=x&b=1", True), ("www.other.org", "/search?q=maps", False), ("", "/z", False),
            ("www.other.org", "/a?utm_source=x&b=1", False)]
    hits = pa.table({"host": pa.array([r[0] for r in rows]).dictionary_encode(),
                     "path": pa.array([r[1] for r in rows]).dictionary_encode(),
                     "download": pa.array([r[2] for r in rows])})
    names = HitRows("https://example.org", None)._action_names(hits).to_pylist()
    base = lambda host: f"http://{host}" if host else "https://example.org"  # noqa: E731 - RequestBuilder's rule
    assert names == [pretable_action_name(*matomo_action(base(h) + p, download=d)) for h, p, d in rows]
    assert names[:4] == ["example.org/a?b=1", "other.org/a?b=1", "example.org/a?utm_source=x&b=1", "search:maps"]
