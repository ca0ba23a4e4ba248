"""The per-site, per-day pipeline through Dagster: materialisations, the blocking check, the
sensor's settling rules and the nightly schedule, with the engine and the fake Matomo."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from analytics_ingest.defs.weblogs.assets import build_site_assets
from analytics_ingest.engine import open_ledger
from analytics_ingest.config import load_settings
from analytics_ingest.sites import load_sites
from analytics_ingest_tests.dagster_resources import dagster_resources, sensor_resources
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN
from analytics_ingest_tests.helpers import make_log as _make_log

DAY = "2024-03-14"


@pytest.fixture
def site_env(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    sites = tmp_path / "sites.yaml"
    sites.write_text(
        "sites:\n"
        "  - id: 1\n"
        "    key: web\n"
        "    name: Web site\n"
        "    main_url: https://example.org\n"
        f"    log_dir: {logs}\n"
        "    file_pattern: 'access*'\n"
        "    timezone: UTC\n"
        "    start_date: 2024-03-01\n"
        "    expected_files:\n"
        "      - {from: 2024-03-01, count: 1}\n"
        "      - {from: 2024-03-20, count: 2}\n"
    )
    monkeypatch.setenv("ANALYTICS_INGEST_SITES", str(sites))
    monkeypatch.setenv("ANALYTICS_INGEST_HOME", str(tmp_path / "home"))
    for name in ("MATOMO_URL", "MATOMO_API_TOKEN", "ANALYTICS_INGEST_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    return logs


@pytest.fixture
def fake(monkeypatch):
    with FakeMatomo(token=TOKEN, sites=SITES) as server:
        monkeypatch.setenv("MATOMO_URL", server.url)
        monkeypatch.setenv("MATOMO_API_TOKEN", TOKEN)
        yield server
        assert server.errors == []


def make_log(path, *args, **kw):
    """A generated log without its manifest file beside it (the sensor would see that too)."""
    manifest = _make_log(path, *args, **kw)
    Path(str(path) + ".manifest.json").unlink()
    return manifest


def _materialize(partition_key: str, **kw):
    site = load_sites()[0]
    return dg.materialize(build_site_assets(site), partition_key=partition_key,
                          resources=dagster_resources(), raise_on_error=False, **kw)


def _day_status(day: str):
    ledger = open_ledger(load_settings())
    try:
        return ledger.day_status(1, dt.date.fromisoformat(day))
    finally:
        ledger.close()


def test_a_day_is_queued_imported_and_loaded_exactly_once(site_env, fake):
    manifest = make_log(site_env / "access.log.2024-03-14", 2000, seed=3, date=DAY, tz="+0000")
    result = _materialize(DAY)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    mats = {m.asset_key.to_user_string(): m.metadata for m in
            (e.materialization for e in result.get_asset_materialization_events())}
    assert mats["web/access_log_files"]["found"].value == 1 and mats["web/access_log_files"]["expected"].value == 1
    assert mats["web/matomo_import"]["day_status"].value == "loaded"
    assert mats["web/matomo_import"]["tracked"].value == manifest["tracked"]
    assert len(fake.pv_ids(1)) == manifest["tracked"] and fake.duplicates() == {}
    assert _day_status(DAY) == "loaded"
    again = _materialize(DAY)  # a rerun (or a backfill over it) sends nothing more
    assert again.success and fake.duplicates() == {} and len(fake.pv_ids(1)) == manifest["tracked"]
    with open(site_env / "access.log.2024-03-14", "a") as fh:  # rsync appends the last minutes
        fh.write('81.2.69.160 - - [14/Mar/2024:23:59:00 +0000] "GET /late-page HTTP/1.1" 200 5 "-" "Mozilla/5.0"\n')
    grown = _materialize(DAY)
    assert grown.success and fake.duplicates() == {}
    assert len(fake.pv_ids(1)) == manifest["tracked"] + 1
    assert any(h["url"].endswith("/late-page") for h in fake.hits(1))
    assert _day_status(DAY) == "loaded"


def test_the_check_fails_for_a_partial_day_and_blocks(site_env, fake):
    make_log(site_env / "access.log.2024-03-20", 500, seed=4, date="2024-03-20", tz="+0000")  # 2 expected
    result = _materialize("2024-03-20")
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert _day_status("2024-03-20") == "partial"


def test_a_backfill_range_runs_in_one_run_with_a_status_per_day(site_env):
    for i, day in enumerate(("2024-03-10", "2024-03-11", "2024-03-12")):
        make_log(site_env / f"access.log.{day}", 300, seed=i, date=day, tz="+0000")
    site = load_sites()[0]
    result = dg.materialize(
        build_site_assets(site), resources=dagster_resources(), raise_on_error=False,
        tags={"dagster/asset_partition_range_start": "2024-03-10", "dagster/asset_partition_range_end": "2024-03-13"},
    )
    imports = [e.materialization for e in result.get_asset_materialization_events()
               if e.materialization.asset_key.to_user_string() == "web/matomo_import"]
    statuses = {m.partition: m.metadata["day_status"].value for m in imports}
    # 2024-03-13 has no file yet: a failed partition (the run fails), not a materialisation
    assert statuses == {"2024-03-10": "loaded", "2024-03-11": "loaded", "2024-03-12": "loaded"}
    assert not result.success
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.metadata["days_not_loaded"].value == {"2024-03-13": "queue"}


def _tick(context_cursor=None):
    from analytics_ingest.definitions import defs

    d = defs()
    sensor = d.resolve_sensor_def("web_log_files")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, cursor=context_cursor, definitions=d,
                                     resources=sensor_resources()) as ctx:
            return sensor.evaluate_tick(ctx)


def test_sensor_settles_files_and_skips_temp_live_and_out_of_range(site_env):
    make_log(site_env / "access.log.2024-03-14", 200, seed=1, date=DAY, tz="+0000")
    (site_env / ".access.log.2024-03-15.Xy12Ab").write_text("partial rsync temp file\n")
    live = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d-%H")
    (site_env / f"access_log.{live}").write_text("still being written\n")
    make_log(site_env / "access.log.2023-01-01", 50, seed=2, date="2023-01-01", tz="+0000")  # before start_date
    first = _tick()
    assert first.run_requests == []  # nothing is settled on the first look
    second = _tick(first.cursor)
    assert [r.partition_key for r in second.run_requests] == [DAY]
    third = _tick(second.cursor)
    assert third.run_requests == []  # nothing new
    # The file grows (rsync appended): it settles again and fires again with a new run key.
    with open(site_env / "access.log.2024-03-14", "a") as fh:
        fh.write('203.0.113.9 - - [14/Mar/2024:23:59:00 +0000] "GET /late HTTP/1.1" 200 5 "-" "Mozilla/5.0"\n')
    os.utime(site_env / "access.log.2024-03-14", ns=(time.time_ns(), time.time_ns()))
    fourth = _tick(third.cursor)
    assert fourth.run_requests == []
    fifth = _tick(fourth.cursor)
    assert [r.partition_key for r in fifth.run_requests] == [DAY]
    assert fifth.run_requests[0].run_key != second.run_requests[0].run_key


def test_sensor_marks_a_file_whose_content_contradicts_its_name_invalid(site_env):
    make_log(site_env / "access.log.2024-03-14", 200, seed=1, date="2024-03-02", tz="+0000")
    second = _tick(_tick().cursor)
    assert second.run_requests == []
    ledger = open_ledger(load_settings())
    try:
        (record,) = ledger.list_files(site_id=1)
    finally:
        ledger.close()
    assert record.status == "invalid" and "name" in record.invalid_reason


def test_nightly_schedule_imports_yesterday_in_the_site_timezone(site_env):
    from analytics_ingest.definitions import defs

    d = defs()
    schedule = d.resolve_schedule_def("web_daily_import")
    when = dt.datetime(2024, 3, 15, 0, 30, tzinfo=dt.timezone.utc)
    ctx = dg.build_schedule_context(scheduled_execution_time=when, repository_def=d.get_repository_def())
    (request,) = schedule.evaluate_tick(ctx).run_requests
    assert request.partition_key == DAY


def test_sensor_registers_a_big_directory_over_several_fast_ticks(site_env, monkeypatch):
    from analytics_ingest.defs.weblogs import sensors

    monkeypatch.setattr(sensors, "MAX_NEW_FILES_PER_TICK", 5)
    for i in range(12):
        day = f"2024-03-{i + 1:02d}"
        make_log(site_env / f"access.log.{day}", 20, seed=i, date=day, tz="+0000")
    cursor, days = _tick().cursor, []
    for _ in range(4):
        started = time.perf_counter()
        result = _tick(cursor)
        assert time.perf_counter() - started < 30
        cursor = result.cursor
        days += [r.partition_key for r in result.run_requests]
    assert sorted(days) == [f"2024-03-{i + 1:02d}" for i in range(12)]


def test_production_and_dev_instance_files_are_valid_dagster_config(tmp_path):
    import shutil

    root = Path(__file__).resolve().parent.parent
    shutil.copy(root / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:  # raises on invalid config
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 2  # the "matomo" pool


def test_rsync_job_runs_each_sites_commands_and_fails_on_a_failing_one(tmp_path, monkeypatch):
    from analytics_ingest.defs.weblogs.schedules import build_rsync_pull_job

    sites = tmp_path / "sites.yaml"
    marker = tmp_path / "pulled"
    sites.write_text(
        "sites:\n  - {id: 1, key: web, name: Web, main_url: 'https://example.org', log_dir: logs, start_date: 2024-01-01,\n"
        f"     rsync_commands: ['touch {marker}', 'echo refused >&2; exit 12']}}\n"
    )
    monkeypatch.setenv("ANALYTICS_INGEST_SITES", str(sites))
    result = build_rsync_pull_job().execute_in_process(resources=dagster_resources(), raise_on_error=False)
    assert marker.exists()
    assert not result.success
