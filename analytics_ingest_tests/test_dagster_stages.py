"""After the import, through Dagster: pretable → counter_metrics (Loaded → Pretable → Calculated) and
matomo_archive with its reports check, against the fake Matomo; the sensors that ask for them."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from analytics_ingest.counter import ROBOTS_LIST
from analytics_ingest.defs.archive.assets import build_archive_assets
from analytics_ingest.defs.counter.assets import build_counter_assets
from analytics_ingest.defs.location import read_location
from analytics_ingest.defs.resources import ArchiveRunnerResource, MatomoResource
from analytics_ingest.defs.usage.assets import build_usage_assets
from analytics_ingest.defs.weblogs.assets import build_site_assets
from analytics_ingest.sites import load_sites
from analytics_ingest.usage.settings import UsageSettings
from analytics_ingest_tests.dagster_resources import configured_resources, sensor_resources
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN, make_log

DAY = "2024-03-14"


def _site_file(tmp_path, logs, neighbours: bool) -> str:
    path = tmp_path / "sites.yaml"
    path.write_text(
        "sites:\n"
        "  - id: 1\n"
        "    key: web\n"
        "    name: Web site\n"
        "    main_url: https://example.org\n"
        f"    log_dir: {logs}\n"
        "    file_pattern: 'access*'\n"
        "    start_date: 2024-03-01\n"
        f"    pretable: {{wait_for_neighbours: {'true' if neighbours else 'false'}}}\n"
        "    counter: {items: builtin:demo}\n"
    )
    return str(path)


@dataclass
class World:
    """What a run is configured with: the sites file and report windows the code location is built
    from, and the resources (home, the fake Matomo, the archive runner)."""

    root: Path
    logs: Path
    fake: FakeMatomo
    sites_file: str
    windows: str | None = None  # ANALYTICS_INGEST_REPORT_WINDOWS of the location
    archive_runner: ArchiveRunnerResource = field(default_factory=lambda: ArchiveRunnerResource(kind="none"))

    @property
    def environ(self) -> dict:
        """The location's settings (what decides which assets exist and their report windows)."""
        env = {"ANALYTICS_INGEST_SITES": self.sites_file}
        return env | ({"ANALYTICS_INGEST_REPORT_WINDOWS": self.windows} if self.windows else {})

    def resources(self) -> dict:
        return configured_resources(self.root / "home", sites_file=self.sites_file,
                                    matomo=MatomoResource(url=self.fake.url, token=TOKEN),
                                    archive_runner=self.archive_runner)


def _world(tmp_path, fake, **kw) -> World:
    logs = tmp_path / "logs"
    logs.mkdir()
    return World(tmp_path, logs, fake, _site_file(tmp_path, logs, neighbours=False), **kw)


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name in ("ANALYTICS_INGEST_LEDGER_URL", "ANALYTICS_INGEST_GEOIP_DB"):  # unset fields read these
        monkeypatch.delenv(name, raising=False)
    with FakeMatomo(token=TOKEN, sites=SITES) as fake:
        yield _world(tmp_path, fake)
        assert fake.errors == []


def _all_assets(world: World):
    site = load_sites(world.sites_file)[0]
    return build_site_assets(site) + build_counter_assets(site) + build_archive_assets(site) + build_usage_assets(
        site, usage=UsageSettings.from_env(world.environ))


def _materialize(world: World, partition: str, selection=None):
    assets = _all_assets(world)
    return dg.materialize(assets, partition_key=partition, resources=world.resources(),
                          raise_on_error=False, selection=selection)


def _metadata(result) -> dict:
    return {e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def _day_status(world: World, day: str) -> str | None:
    with world.resources()["ingest"].ledger() as ledger:  # the run's ledger (per home and Matomo)
        return ledger.day_status(1, dt.date.fromisoformat(day))


def test_one_run_takes_a_day_from_logs_to_counter_metrics_and_fresh_reports(env):
    logs, fake = env.logs, env.fake
    manifest = make_log(logs / f"access.log.{DAY}", 2000, seed=21, date=DAY, tz="+0000")
    (logs / f"access.log.{DAY}.manifest.json").unlink()
    result = _materialize(env, DAY)
    assert result.success
    meta = _metadata(result)
    assert meta["web/pretable"]["rows"] == manifest["tracked"]
    counter = meta["web/counter_metrics"]
    assert counter["day_status"] == "calculated"
    # the run also wrote the day's usage reports: SciELO's Done (calculated and exported)
    assert meta["web/usage_reports"]["day_status"] == "done" and _day_status(env, DAY) == "done"
    assert counter["rows_read"] == manifest["tracked"]
    assert counter["Total_Item_Investigations"] > 0 and counter["items"] > 0
    assert counter["robots_list"] == ROBOTS_LIST and importlib.metadata.version("counter-robots") in ROBOTS_LIST
    items = pd.read_parquet(counter["items_parquet"])
    assert items["Total_Item_Investigations"].sum() == counter["Total_Item_Investigations"]
    assert (items["Unique_Item_Investigations"] <= items["Total_Item_Investigations"]).all()
    archive = meta["web/matomo_archive"]
    assert archive["archived"] is True and archive["runner"] == "none"
    assert [(i["idSites"], i["dates"]) for i in fake.invalidations] == [([1], [DAY])]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["day_loaded"].passed
    check = checks["reports_match_ledger"]
    assert check.passed, check.description
    assert check.metadata["ledger_nb_pageviews"].value == check.metadata["matomo_nb_pageviews"].value > 0
    assert check.metadata["excluded_by_matomo"].value == 0  # the fake models no bot IP range unless asked
    assert check.metadata["delivered"].value == check.metadata["expected_in_reports"].value \
        == check.metadata["in_reports"].value > 0

    again = _materialize(env, DAY)  # nothing new: no hit sent, no invalidation, the archive says why it skipped
    assert again.success and fake.duplicates() == {} and len(fake.invalidations) == 1
    skipped = _metadata(again)["web/matomo_archive"]
    assert skipped["archived"] is False and skipped["reason"].startswith("skipped: no new hits since the archive")


def test_a_pretable_run_for_a_day_whose_neighbour_is_missing_fails_with_one_line(env, tmp_path):
    logs, _fake = env.logs, env.fake
    env.sites_file = _site_file(tmp_path, logs, neighbours=True)
    make_log(logs / f"access.log.{DAY}", 300, seed=2, date=DAY, tz="+0000")
    (logs / f"access.log.{DAY}.manifest.json").unlink()
    result = _materialize(env, DAY)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE"
                   and e.step_key.endswith("pretable"))
    text = failure.step_failure_data.error.message
    assert "neighbour 2024-03-13 is" in text and "Traceback" not in text
    assert _day_status(env, DAY) == "loaded"


def _tick(world: World, sensor_name: str):
    from analytics_ingest.definitions import build_defs

    d = build_defs(read_location(world.environ))
    sensor = d.resolve_sensor_def(sensor_name)
    with dg.instance_for_test() as instance, dg.build_sensor_context(
            instance=instance, definitions=d, resources=sensor_resources(world.resources())) as ctx:
        return sensor.evaluate_tick(ctx)


def test_sensors_ask_for_ready_days_and_days_with_new_hits_once(env):
    logs, _fake = env.logs, env.fake
    make_log(logs / f"access.log.{DAY}", 300, seed=4, date=DAY, tz="+0000")
    (logs / f"access.log.{DAY}.manifest.json").unlink()
    assert _tick(env, "web_ready_days").run_requests == []
    assert _materialize(env, DAY, selection=["web/access_log_files", "web/matomo_import"]).success
    ready = _tick(env, "web_ready_days").run_requests
    assert [r.partition_key for r in ready] == [DAY] and ready[0].job_name in (None, "web_pretable")
    archive = _tick(env, "web_archive_days").run_requests
    assert [r.partition_key for r in archive] == [DAY]
    assert _materialize(env, DAY, selection=["web/pretable", "web/counter_metrics", "web/matomo_archive"]).success
    assert _tick(env, "web_ready_days").run_requests == []  # Calculated now
    assert _tick(env, "web_archive_days").run_requests == []  # archived, nothing new


def test_a_local_archiver_refreshes_reports_and_a_silent_failure_fails_the_check(tmp_path, monkeypatch):
    from analytics_ingest_tests.test_archive import archive_command

    monkeypatch.delenv("ANALYTICS_INGEST_LEDGER_URL", raising=False)
    with FakeMatomo(token=TOKEN, sites=SITES, archiving=True) as fake:
        world = _world(tmp_path, fake, archive_runner=ArchiveRunnerResource(kind="local", command=archive_command(fake)))
        logs = world.logs
        make_log(logs / f"access.log.{DAY}", 500, seed=8, date=DAY, tz="+0000")
        (logs / f"access.log.{DAY}.manifest.json").unlink()
        selection = ["web/access_log_files", "web/matomo_import", "web/matomo_archive"]
        first = _materialize(world, DAY, selection=selection)
        assert first.success
        check = next(c for c in first.get_asset_check_evaluations() if c.check_name == "reports_match_ledger")
        assert check.passed and check.metadata["matomo_nb_pageviews"].value > 0
        assert _metadata(first)["web/matomo_archive"]["runner"] == "local" and len(fake.archive_runs) == 1

        # rsync appends a line; this time the archiver "succeeds" without recomputing anything
        fake.archive_fails = True
        with open(logs / f"access.log.{DAY}", "a") as fh:
            fh.write('81.2.69.160 - - [14/Mar/2024:23:59:00 +0000] "GET /late HTTP/1.1" 200 5 "-" "Mozilla/5.0"\n')
        second = _materialize(world, DAY, selection=selection)
        assert second.success  # the archive ran; its check is what shows the archive did not take
        meta = _metadata(second)["web/matomo_archive"]
        assert meta["archived"] is True and meta["reason"].startswith("new hits since the archive")
        check = next(c for c in second.get_asset_check_evaluations() if c.check_name == "reports_match_ledger")
        assert not check.passed and "1 missing" in check.description
        assert check.severity == dg.AssetCheckSeverity.ERROR  # a real archiver ran: not just "cron is late"
        assert fake.duplicates() == {} and fake.errors == []


def test_usage_reports_are_written_for_each_window_and_count_what_was_delivered(env):
    logs, _fake = env.logs, env.fake
    env.windows = "TODAY,7D"
    first = make_log(logs / "access.log.2024-03-13", 400, seed=31, date="2024-03-13", tz="+0000")
    second = make_log(logs / f"access.log.{DAY}", 600, seed=32, date=DAY, tz="+0000")
    for day in ("2024-03-13", DAY):
        (logs / f"access.log.{day}.manifest.json").unlink()
        assert _materialize(env, day, selection=["web/access_log_files", "web/matomo_import"]).success
    result = _materialize(env, DAY, selection=["web/usage_reports"])
    assert result.success
    meta = _metadata(result)["web/usage_reports"]
    today = pd.read_csv(meta["TODAY_csv"])
    week = pd.read_csv(meta["7D_csv"])
    assert list(today.columns) == ["metric", "count", "description"]
    views = lambda frame, m: int(frame.loc[frame["metric"] == m, "count"].iloc[0])  # noqa: E731
    assert views(today, "pageviews") + views(today, "downloads") == second["tracked"]
    assert views(week, "pageviews") + views(week, "downloads") == first["tracked"] + second["tracked"]
    assert views(week, "visitors") == views(week, "new_visitors") + views(week, "returning_visitors")
    assert meta["7D_days_without_data"] == 5  # 2024-03-08..12 have no logs: listed, not zero
    assert "pageviews" in meta["report"]
    assert meta["day_status"] == "loaded"  # reports of a day whose metrics are not calculated: not Done
