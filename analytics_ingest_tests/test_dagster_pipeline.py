"""The per-site, per-day pipeline through Dagster: materialisations, the blocking check, the
sensor's settling rules and the nightly schedule, with the engine and the fake Matomo."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from analytics_ingest.defs.location import read_location
from analytics_ingest.defs.resources import MatomoResource
from analytics_ingest.defs.weblogs.assets import build_site_assets
from analytics_ingest.sites import load_sites
from analytics_ingest_tests.dagster_resources import configured_resources, sensor_resources
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
    for name in ("MATOMO_URL", "MATOMO_API_TOKEN", "ANALYTICS_INGEST_LEDGER_URL"):  # none of the developer's leaks in
        monkeypatch.delenv(name, raising=False)
    return logs


# A run's configuration sits beside the logs: the sites file the location is built from and the home.
def _sites_file(logs: Path) -> Path:
    return logs.parent / "sites.yaml"


def _resources(logs: Path, fake: FakeMatomo | None = None) -> dict:
    """Configured resources: the fake Matomo when the test has one, else the offline outbox."""
    matomo = MatomoResource(url=fake.url, token=TOKEN) if fake is not None else None
    return configured_resources(logs.parent / "home", sites_file=_sites_file(logs), matomo=matomo)


@pytest.fixture
def fake():
    with FakeMatomo(token=TOKEN, sites=SITES) as server:
        yield server
        assert server.errors == []


def make_log(path, *args, **kw):
    """A generated log without its manifest file beside it (the sensor would see that too)."""
    manifest = _make_log(path, *args, **kw)
    Path(str(path) + ".manifest.json").unlink()
    return manifest


def _materialize(logs: Path, partition_key: str, fake: FakeMatomo | None = None, **kw):
    site = load_sites(_sites_file(logs))[0]
    return dg.materialize(build_site_assets(site), partition_key=partition_key,
                          resources=_resources(logs, fake), raise_on_error=False, **kw)


def _day_status(logs: Path, day: str, fake: FakeMatomo | None = None):
    with _resources(logs, fake)["ingest"].ledger() as ledger:  # the run's ledger (per home and Matomo)
        return ledger.day_status(1, dt.date.fromisoformat(day))


def test_a_day_is_queued_imported_and_loaded_exactly_once(site_env, fake):
    manifest = make_log(site_env / "access.log.2024-03-14", 2000, seed=3, date=DAY, tz="+0000")
    result = _materialize(site_env, DAY, fake)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    mats = {m.asset_key.to_user_string(): m.metadata for m in
            (e.materialization for e in result.get_asset_materialization_events())}
    assert mats["web/access_log_files"]["found"].value == 1 and mats["web/access_log_files"]["expected"].value == 1
    assert mats["web/matomo_import"]["day_status"].value == "loaded"
    assert mats["web/matomo_import"]["tracked"].value == manifest["tracked"]
    assert len(fake.pv_ids(1)) == manifest["tracked"] and fake.duplicates() == {}
    assert _day_status(site_env, DAY, fake) == "loaded"
    again = _materialize(site_env, DAY, fake)  # a rerun (or a backfill over it) sends nothing more
    assert again.success and fake.duplicates() == {} and len(fake.pv_ids(1)) == manifest["tracked"]
    with open(site_env / "access.log.2024-03-14", "a") as fh:  # rsync appends the last minutes
        fh.write('81.2.69.160 - - [14/Mar/2024:23:59:00 +0000] "GET /late-page HTTP/1.1" 200 5 "-" "Mozilla/5.0"\n')
    grown = _materialize(site_env, DAY, fake)
    assert grown.success and fake.duplicates() == {}
    assert len(fake.pv_ids(1)) == manifest["tracked"] + 1
    assert any(h["url"].endswith("/late-page") for h in fake.hits(1))
    assert _day_status(site_env, DAY, fake) == "loaded"


def test_the_check_fails_for_a_partial_day_and_blocks(site_env, fake):
    make_log(site_env / "access.log.2024-03-20", 500, seed=4, date="2024-03-20", tz="+0000")  # 2 expected
    result = _materialize(site_env, "2024-03-20", fake)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert _day_status(site_env, "2024-03-20", fake) == "partial"


def test_a_backfill_range_runs_in_one_run_with_a_status_per_day(site_env):
    for i, day in enumerate(("2024-03-10", "2024-03-11", "2024-03-12")):
        make_log(site_env / f"access.log.{day}", 300, seed=i, date=day, tz="+0000")
    site = load_sites(_sites_file(site_env))[0]
    result = dg.materialize(
        build_site_assets(site), resources=_resources(site_env), raise_on_error=False,
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


def _defs(logs: Path) -> dg.Definitions:
    """The code location built from the test's sites file, not from the environment."""
    from analytics_ingest.definitions import build_defs

    return build_defs(read_location({"ANALYTICS_INGEST_SITES": str(_sites_file(logs))}))


def _tick(logs: Path, context_cursor=None):
    d = _defs(logs)
    sensor = d.resolve_sensor_def("web_log_files")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, cursor=context_cursor, definitions=d,
                                     resources=sensor_resources(_resources(logs))) as ctx:
            return sensor.evaluate_tick(ctx)


def test_sensor_settles_files_and_skips_temp_live_and_out_of_range(site_env):
    make_log(site_env / "access.log.2024-03-14", 200, seed=1, date=DAY, tz="+0000")
    (site_env / ".access.log.2024-03-15.Xy12Ab").write_text("partial rsync temp file\n")
    live = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d-%H")
    (site_env / f"access_log.{live}").write_text("still being written\n")
    make_log(site_env / "access.log.2023-01-01", 50, seed=2, date="2023-01-01", tz="+0000")  # before start_date
    first = _tick(site_env)
    assert first.run_requests == []  # nothing is settled on the first look
    second = _tick(site_env, first.cursor)
    assert [r.partition_key for r in second.run_requests] == [DAY]
    third = _tick(site_env, second.cursor)
    assert third.run_requests == []  # nothing new
    # The file grows (rsync appended): it settles again and fires again with a new run key.
    with open(site_env / "access.log.2024-03-14", "a") as fh:
        fh.write('203.0.113.9 - - [14/Mar/2024:23:59:00 +0000] "GET /late HTTP/1.1" 200 5 "-" "Mozilla/5.0"\n')
    os.utime(site_env / "access.log.2024-03-14", ns=(time.time_ns(), time.time_ns()))
    fourth = _tick(site_env, third.cursor)
    assert fourth.run_requests == []
    fifth = _tick(site_env, fourth.cursor)
    assert [r.partition_key for r in fifth.run_requests] == [DAY]
    assert fifth.run_requests[0].run_key != second.run_requests[0].run_key


def test_sensor_marks_a_file_whose_content_contradicts_its_name_invalid(site_env):
    make_log(site_env / "access.log.2024-03-14", 200, seed=1, date="2024-03-02", tz="+0000")
    second = _tick(site_env, _tick(site_env).cursor)
    assert second.run_requests == []
    with _resources(site_env)["ingest"].ledger() as ledger:
        (record,) = ledger.list_files(site_id=1)
    assert record.status == "invalid" and "name" in record.invalid_reason


def test_nightly_schedule_imports_yesterday_in_the_site_timezone(site_env):
    d = _defs(site_env)
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
    cursor, days = _tick(site_env).cursor, []
    for _ in range(4):
        started = time.perf_counter()
        result = _tick(site_env, cursor)
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


def test_rsync_job_runs_each_sites_commands_and_fails_on_a_failing_one(tmp_path):
    from analytics_ingest.defs.weblogs.schedules import build_rsync_pull_job

    sites = tmp_path / "sites.yaml"
    marker = tmp_path / "pulled"
    sites.write_text(
        "sites:\n  - {id: 1, key: web, name: Web, main_url: 'https://example.org', log_dir: logs, start_date: 2024-01-01,\n"
        f"     rsync_commands: ['touch {marker}', 'echo refused >&2; exit 12']}}\n"
    )
    result = build_rsync_pull_job().execute_in_process(
        resources=configured_resources(tmp_path / "home", sites_file=sites), raise_on_error=False)
    assert marker.exists()
    assert not result.success
