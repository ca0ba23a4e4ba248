"""The UI's per-day status of ``matomo_import`` is the ledger's: after one ranged run (what a
backfill launches) over loaded, partial, empty and no-logs-expected days, the Loaded days and the
day with no logs expected are MATERIALIZED, the others FAILED with one line each, and a "failed
and missing" backfill would pick up exactly the days that need work. Checked in process through
the instance's partition status, and end to end: a backfill launched through the GraphQL API of a
real ``dagster-webserver``, run by ``dagster-daemon``, then the asset's partition statuses and the
backfill's counts as the UI reads them."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import dagster as dg
import pytest
import requests

from analytics_ingest.defs.weblogs.assets import build_site_assets, import_key
from analytics_ingest.sites import load_sites
from analytics_ingest_tests.dagster_resources import dagster_resources, sensor_resources
from analytics_ingest_tests.helpers import make_log as _make_log
from analytics_ingest_tests.processes import free_port, http_ok, processes, wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FIRST, LAST = "2024-03-10", "2024-03-14"
DAYS = ["2024-03-10", "2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14"]
# 10 and 14: one file, one expected. 11: two expected, one present (Partial). 12: one expected, none
# present (Queue). 13: none expected, none present (Loaded: nothing to wait for).
LOGS = {"2024-03-10": 1, "2024-03-11": 1, "2024-03-14": 1}
EXPECTED = {"MATERIALIZED": ["2024-03-10", "2024-03-13", "2024-03-14"], "FAILED": ["2024-03-11", "2024-03-12"]}

SITES_YAML = """\
sites:
  - id: 1
    key: web
    name: Web site
    main_url: https://example.org
    log_dir: {logs}
    file_pattern: 'access*'
    timezone: UTC
    start_date: 2024-03-01
    expected_files:
      - {{from: 2024-03-01, count: 1}}
      - {{from: 2024-03-11, to: 2024-03-11, count: 2}}
      - {{from: 2024-03-12, to: 2024-03-12, count: 1}}
      - {{from: 2024-03-13, to: 2024-03-13, count: 0}}
      - {{from: 2024-03-14, count: 1}}
"""


def make_log(path, *args, **kw):
    manifest = _make_log(path, *args, **kw)
    Path(str(path) + ".manifest.json").unlink()
    return manifest


@pytest.fixture
def site_env(tmp_path, monkeypatch):
    """Offline (no MATOMO_URL: hits go to the outbox), a temporary sites file and DAGSTER_HOME."""
    logs, dagster_home = tmp_path / "logs", tmp_path / "dagster_home"
    logs.mkdir()
    dagster_home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    sites = tmp_path / "sites.yaml"
    sites.write_text(SITES_YAML.format(logs=logs))
    monkeypatch.setenv("ANALYTICS_INGEST_SITES", str(sites))
    monkeypatch.setenv("ANALYTICS_INGEST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    for name in ("MATOMO_URL", "MATOMO_API_TOKEN", "ANALYTICS_INGEST_LEDGER_URL", "ANALYTICS_INGEST_GEOIP_DB"):
        monkeypatch.delenv(name, raising=False)
    for i, (day, count) in enumerate(LOGS.items()):
        for n in range(count):
            make_log(logs / f"access.log.{day}.{n}", 200, seed=40 + i, date=day, tz="+0000")
    return logs, dagster_home


def _run_range(instance, first: str, last: str):
    """One run over [first, last], as a multi-run backfill of up to 31 days launches it."""
    site = load_sites()[0]
    return dg.materialize(
        build_site_assets(site), instance=instance, resources=dagster_resources(), raise_on_error=False,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def _statuses(instance) -> dict[str, str | None]:
    site = load_sites()[0]
    assets = {a.key: a for a in build_site_assets(site)}
    partitions = assets[import_key(site)].partitions_def
    by_day = instance.get_status_by_partition(import_key(site), DAYS, partitions)
    return {day: status.value if isinstance(status, dg.AssetPartitionStatus) else None for day, status in by_day.items()}


def _by_status(statuses: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for day, status in sorted(statuses.items()):
        out.setdefault(status, []).append(day)
    return out


def test_a_ranged_run_leaves_each_day_with_the_ledgers_status(site_env):
    logs, _home = site_env
    with dg.instance_for_test() as instance:
        result = _run_range(instance, FIRST, LAST)
        assert not result.success  # two days are not Loaded: the run says so

        imports = [e.materialization for e in result.get_asset_materialization_events()
                   if e.materialization.asset_key == dg.AssetKey(["web", "matomo_import"])]
        # exactly one materialisation per Loaded day, none for the others
        assert sorted(m.partition for m in imports) == EXPECTED["MATERIALIZED"]
        meta = {m.partition: {k: v.value for k, v in m.metadata.items()} for m in imports}
        assert meta["2024-03-10"]["day_status"] == "loaded" and meta["2024-03-10"]["tracked"] > 0
        assert meta["2024-03-13"]["note"].startswith("no logs expected") and meta["2024-03-13"]["expected"] == 0
        assert "note" not in meta["2024-03-14"]
        # the queue's metadata uses the ledger's words and numbers (one name per concept)
        from analytics_ingest.config import load_settings
        from analytics_ingest.engine import open_ledger

        queued = {e.materialization.partition: {k: v.value for k, v in e.materialization.metadata.items()}
                  for e in result.get_asset_materialization_events()
                  if e.materialization.asset_key == dg.AssetKey(["web", "access_log_files"])}
        with open_ledger(load_settings()) as ledger:
            rows = {r.day.isoformat(): r for r in ledger.day_statuses(1)}
        assert len(queued) == 5 and set(queued) <= set(rows)
        for day, values in queued.items():
            if day in rows:
                assert (values["expected"], values["found"]) == (rows[day].expected, rows[day].found), day

        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE"
                       and e.step_key.endswith("matomo_import"))
        text = failure.step_failure_data.error.message
        assert "Traceback" not in text
        assert "2024-03-11: partial — 1 of 2 expected files loaded; rerun when the rest arrive" in text
        assert "2024-03-12: queue — 0 of 1 expected file loaded; none found yet: rerun when they arrive" in text
        assert "2024-03-10" not in text and "2024-03-13" not in text

        (check,) = result.get_asset_check_evaluations()
        assert not check.passed and check.metadata["days_not_loaded"].value == {
            "2024-03-11": "partial", "2024-03-12": "queue"}

        # The days that are not Loaded keep their counts on the partition as observations.
        observed = {e.partition: e.asset_observation_data.asset_observation.metadata["day_status"].value
                    for e in (r.event_log_entry.dagster_event for r in instance.fetch_observations(
                        import_key(load_sites()[0]), limit=10).records)}
        assert observed == {"2024-03-11": "partial", "2024-03-12": "queue"}

        statuses = _statuses(instance)
        assert _by_status(statuses) == EXPECTED

        # "Backfill failed and missing" in the range: exactly the two days that need work.
        # The rest arrives, the backfill reruns them, and every day is MATERIALIZED.
        make_log(logs / "access.log.2024-03-11.1", 150, seed=60, date="2024-03-11", tz="+0000")
        make_log(logs / "access.log.2024-03-12.0", 150, seed=61, date="2024-03-12", tz="+0000")
        failed_or_missing = [d for d, s in statuses.items() if s in ("FAILED", None)]
        assert failed_or_missing == ["2024-03-11", "2024-03-12"]
        again = _run_range(instance, failed_or_missing[0], failed_or_missing[-1])
        assert again.success
        assert set(_statuses(instance).values()) == {"MATERIALIZED"}


def test_a_run_whose_days_are_all_loaded_materialises_them_once(site_env):
    with dg.instance_for_test() as instance:
        result = _run_range(instance, "2024-03-13", "2024-03-14")
        assert result.success
        imports = [e.materialization.partition for e in result.get_asset_materialization_events()
                   if e.materialization.asset_key == dg.AssetKey(["web", "matomo_import"])]
        assert sorted(imports) == ["2024-03-13", "2024-03-14"]
        (check,) = result.get_asset_check_evaluations()
        assert check.passed


def test_a_day_that_is_not_loaded_feeds_no_pretable_or_archive_in_the_same_run(site_env):
    from analytics_ingest.defs.archive.assets import build_archive_assets
    from analytics_ingest.defs.counter.assets import build_counter_assets

    site = load_sites()[0]
    assets = build_site_assets(site) + build_counter_assets(site) + build_archive_assets(site)
    with dg.instance_for_test() as instance:
        result = dg.materialize(assets, instance=instance, partition_key="2024-03-11",
                                resources=dagster_resources(), raise_on_error=False)
        assert not result.success
        materialized = {e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert materialized == {"web/access_log_files"}
        started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
        assert not any(k.endswith(("pretable", "matomo_archive")) for k in started), started
        assert _statuses(instance)["2024-03-11"] == "FAILED"


def test_a_day_that_will_never_get_its_file_turns_green_once_the_sites_file_expects_none(site_env):
    with dg.instance_for_test() as instance:
        _run_range(instance, "2024-03-12", "2024-03-12")
        assert _statuses(instance)["2024-03-12"] == "FAILED"
        sites = Path(os.environ["ANALYTICS_INGEST_SITES"])
        sites.write_text(sites.read_text().replace("{from: 2024-03-12, to: 2024-03-12, count: 1}",
                                                   "{from: 2024-03-12, to: 2024-03-12, count: 0}"))
        site = load_sites()[0]
        again = dg.materialize(build_site_assets(site), instance=instance, partition_key="2024-03-12",
                               resources=dagster_resources(), selection=["web/matomo_import"])
        (mat,) = [e.materialization for e in again.get_asset_materialization_events()]
        assert mat.metadata["note"].value.startswith("no logs expected")
        assert _statuses(instance)["2024-03-12"] == "MATERIALIZED"


def test_a_day_that_raises_fails_with_the_rest_of_the_run_and_the_days_before_stay_materialised(
        site_env, monkeypatch):
    from analytics_ingest.weblogs import pipeline

    real = pipeline.import_day

    def import_day(settings, ledger, site, day, **kw):
        if day.isoformat() == "2024-03-13":
            raise RuntimeError("ledger went away")
        return real(settings, ledger, site, day, **kw)

    monkeypatch.setattr(pipeline, "import_day", import_day)
    with dg.instance_for_test() as instance:
        assert not _run_range(instance, FIRST, LAST).success
        assert _by_status(_statuses(instance)) == {
            "MATERIALIZED": ["2024-03-10"], "FAILED": ["2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14"]}


def test_the_sensor_and_the_nightly_schedule_do_not_retry_a_run_that_failed_for_a_day_not_loaded(site_env):
    import datetime as dt

    from analytics_ingest.definitions import defs

    d = defs()
    sensor = d.resolve_sensor_def("web_log_files")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, definitions=d, resources=sensor_resources()) as ctx:
            first = sensor.evaluate_tick(ctx)
        with dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=d,
                                     resources=sensor_resources()) as ctx:
            second = sensor.evaluate_tick(ctx)
    assert sorted(r.partition_key for r in second.run_requests) == sorted(LOGS)
    assert all(r.tags["dagster/retry_on_asset_or_op_failure"] == "false" for r in second.run_requests)
    when = dt.datetime(2024, 3, 15, 0, 30, tzinfo=dt.timezone.utc)
    ctx = dg.build_schedule_context(scheduled_execution_time=when, repository_def=d.get_repository_def())
    (request,) = d.resolve_schedule_def("web_daily_import").evaluate_tick(ctx).run_requests
    assert request.partition_key == "2024-03-14" and request.tags["dagster/retry_on_asset_or_op_failure"] == "false"


STATUS_QUERY = """
query ($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) {
    __typename
    ... on AssetNode {
      assetPartitionStatuses {
        __typename
        ... on TimePartitionStatuses { ranges { status startKey endKey } }
      }
    }
  }
}"""


def _ranges_to_days(ranges) -> dict[str, str]:
    import datetime as dt

    out = {}
    for r in ranges:
        day, end = dt.date.fromisoformat(r["startKey"]), dt.date.fromisoformat(r["endKey"])
        while day <= end:
            out[day.isoformat()] = r["status"]
            day += dt.timedelta(days=1)
    return out


SENSORS_QUERY = """
{
  sensorsOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "analytics_ingest"}) {
    __typename
    ... on Sensors { results { name jobOriginId sensorState { selectorId } } }
  }
}"""
STOP_SENSOR = """
mutation ($origin: String!, $selector: String!) {
  stopSensor(jobOriginId: $origin, jobSelectorId: $selector) { __typename }
}"""
LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
BACKFILL_QUERY = """
query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill {
      status
      runs { status tags { key value } }
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path } numPartitionsTargeted numPartitionsMaterialized numPartitionsFailed
          }
        }
      }
    }
  }
}"""


@pytest.mark.skipif(not (BIN / "dagster-webserver").exists() or not (BIN / "dagster-daemon").exists(),
                    reason="dagster-webserver / dagster-daemon are not installed in this environment")
def test_the_webservers_graphql_shows_each_days_status_after_a_backfill(site_env, tmp_path):
    """A backfill launched through the UI's GraphQL over 10..14 March, run by the daemon (one run: the
    assets' multi-run policy takes up to 31 days per run); then the asset's partition bar as the UI
    reads it."""
    _logs, dagster_home = site_env
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_") or k == "DAGSTER_HOME"}
    port = free_port()
    outputs = [tmp_path / "webserver.log", tmp_path / "daemon.log"]
    workspace = str(ROOT / "workspace.yaml")
    with processes() as start:
        start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", workspace],
              outputs[0], ROOT, env)
        base = f"http://127.0.0.1:{port}"

        def gql(query: str, **variables) -> dict:
            answer = requests.post(f"{base}/graphql", timeout=60, json={"query": query, "variables": variables}).json()
            assert not answer.get("errors"), answer
            return answer["data"]

        wait_for(lambda: http_ok(f"{base}/server_info"), 300, "the webserver did not answer", outputs)
        sensors = {}

        def location_loaded() -> bool:
            nonlocal sensors
            found = gql(SENSORS_QUERY)["sensorsOrError"]
            sensors = {s["name"]: s for s in found.get("results") or []}
            return bool(sensors)

        wait_for(location_loaded, 180, "the code location did not load", outputs)
        for sensor in sensors.values():  # only the backfill may run: no sensor of the daemon
            gql(STOP_SENSOR, origin=sensor["jobOriginId"], selector=sensor["sensorState"]["selectorId"])
        start([str(BIN / "dagster-daemon"), "run", "-w", workspace], outputs[1], ROOT, env)

        launched = gql(LAUNCH_BACKFILL, params={
            "assetSelection": [{"path": ["web", "access_log_files"]}, {"path": ["web", "matomo_import"]}],
            "partitionNames": DAYS,
        })["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill = {}

        def finished() -> bool:
            nonlocal backfill
            backfill = gql(BACKFILL_QUERY, id=launched["backfillId"])["partitionBackfillOrError"]
            return backfill.get("status") in ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "COMPLETED", "FAILED",
                                              "CANCELED")

        wait_for(finished, 480, "the backfill did not finish", outputs)
        # Not "Succeeded": two of the five days are not Loaded.
        assert backfill["status"] == "COMPLETED_FAILED", backfill
        (run,) = backfill["runs"]  # one run over the five days
        assert run["status"] == "FAILURE"
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (FIRST, LAST)
        counts = {"/".join(s["assetKey"]["path"]): s for s in backfill["assetBackfillData"]["assetBackfillStatuses"]}
        imported = counts["web/matomo_import"]
        assert (imported["numPartitionsTargeted"], imported["numPartitionsMaterialized"],
                imported["numPartitionsFailed"]) == (5, 3, 2), imported

        node = gql(STATUS_QUERY, path=["web", "matomo_import"])["assetNodeOrError"]
        statuses = node["assetPartitionStatuses"]
        assert statuses["__typename"] == "TimePartitionStatuses", statuses
        by_day = _ranges_to_days(statuses["ranges"])
        assert by_day == {"2024-03-10": "MATERIALIZED", "2024-03-11": "FAILED", "2024-03-12": "FAILED",
                          "2024-03-13": "MATERIALIZED", "2024-03-14": "MATERIALIZED"}  # every other day: missing
