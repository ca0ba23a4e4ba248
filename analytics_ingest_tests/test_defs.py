"""The Dagster code location: it loads, and its asset keys, checks, jobs and automation are stable.

Renaming an asset key orphans its history, so the keys are snapshotted here on purpose.
"""

from __future__ import annotations

import dagster as dg

from analytics_ingest.definitions import defs

# The embedded default shows the whole mission (issue #13 item 4): the demo site's web logs and its
# CloudWatch replay from a recorded day, and Opencast from a recorded day (analytics_ingest/demo).
EXPECTED_ASSETS = ["demo_site/access_log_files", "demo_site/cloudwatch_missed_events", "demo_site/counter_metrics",
                   "demo_site/matomo_archive", "demo_site/matomo_import", "demo_site/matomo_replay",
                   "demo_site/pretable", "demo_site/usage_reports",
                   "opencast_episodes", "opencast_matomo_events", "opencast_useractions"]
EXPECTED_CHECKS = ["demo_site/matomo_archive:reports_match_ledger", "demo_site/matomo_import:day_loaded"]
EXPECTED_JOBS = ["demo_site_archive", "demo_site_import", "demo_site_pretable", "demo_site_replay",
                 "demo_site_replay_window", "demo_site_usage_reports", "opencast_daily", "rsync_pull_job"]
EXPECTED_SENSORS = ["demo_site_archive_days", "demo_site_log_files", "demo_site_ready_days"]
EXPECTED_SCHEDULES = {"demo_site_daily_import": "30 0 * * *", "demo_site_usage_reports_daily": "0 6 * * *",
                      "rsync_pull_hourly": "5 * * * *", "demo_site_replay_daily": "30 1 * * *",
                      "opencast_daily_yesterday": "0 3 * * *"}  # no 2-minute Opencast harvest: a recorded day


def test_definitions_load_and_validate():
    dg.Definitions.validate_loadable(defs())


def test_asset_keys_and_checks_snapshot():
    graph = defs().resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == EXPECTED_ASSETS
    checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys)
    assert checks == EXPECTED_CHECKS


def test_jobs_sensors_schedules_snapshot():
    d = defs()
    assert sorted(j.name for j in d.resolve_all_job_defs() if not j.name.startswith("__")) == EXPECTED_JOBS
    assert sorted(s.name for s in d.sensors) == EXPECTED_SENSORS
    assert {s.name: s.cron_schedule for s in d.schedules} == EXPECTED_SCHEDULES


def test_lineage_follows_sciELOs_progression():
    """Queue → Partial/Loaded → Pretable → Calculated, and archiving after everything that delivers hits."""
    graph = defs().resolve_asset_graph()
    parents = {k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
               for k in graph.get_all_asset_keys()}
    assert parents == {
        "demo_site/access_log_files": [],
        "demo_site/matomo_import": ["demo_site/access_log_files"],
        "demo_site/pretable": ["demo_site/matomo_import"],
        "demo_site/counter_metrics": ["demo_site/pretable"],
        # everything that delivers hits to the site's days feeds its archive and its usage reports
        "demo_site/matomo_archive": ["demo_site/matomo_import", "demo_site/matomo_replay", "opencast_matomo_events"],
        "demo_site/usage_reports": ["demo_site/counter_metrics", "demo_site/matomo_import", "demo_site/matomo_replay",
                                    "opencast_matomo_events"],
        "demo_site/cloudwatch_missed_events": [],
        "demo_site/matomo_replay": ["demo_site/cloudwatch_missed_events"],
        "opencast_useractions": [],
        "opencast_episodes": [],
        "opencast_matomo_events": ["opencast_useractions"],
    }


def test_real_settings_replace_the_recorded_demo_sources(monkeypatch, tmp_path):
    """CLOUDWATCH_SITES, OPENCAST_URL or another sites file: the recorded sources are not used."""
    monkeypatch.setenv("CLOUDWATCH_SITES", "demo_site")
    monkeypatch.setenv("CLOUDWATCH_API", "filter")
    d = defs()
    keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
    assert "demo_site/matomo_replay" in keys and not {k for k in keys if k.startswith("opencast_")}
    missed = dg.AssetKey(["demo_site", "cloudwatch_missed_events"])
    assert "recorded" not in d.resolve_assets_def(missed).specs_by_key[missed].description
    monkeypatch.delenv("CLOUDWATCH_SITES")
    sites = tmp_path / "sites.yaml"
    sites.write_text("sites:\n  - {id: 1, key: web, name: Web, main_url: 'https://example.org', log_dir: ., "
                     "start_date: 2024-03-01}\n")
    monkeypatch.setenv("ANALYTICS_INGEST_SITES", str(sites))
    keys = {k.to_user_string() for k in defs().resolve_asset_graph().get_all_asset_keys()}
    assert keys == {"web/access_log_files", "web/matomo_import", "web/pretable", "web/matomo_archive",
                    "web/usage_reports"}


def test_cloudwatch_replay_appears_for_the_sites_it_is_configured_for(monkeypatch):
    monkeypatch.setenv("CLOUDWATCH_SITES", "demo_site")
    d = defs()
    graph = d.resolve_asset_graph()
    assert {"demo_site/cloudwatch_missed_events", "demo_site/matomo_replay"} <= {
        k.to_user_string() for k in graph.get_all_asset_keys()}
    archive_parents = {p.to_user_string() for p in graph.get(dg.AssetKey(["demo_site", "matomo_archive"])).parent_keys}
    assert archive_parents == {"demo_site/matomo_import", "demo_site/matomo_replay"}
    assert {"demo_site_replay", "demo_site_replay_window"} <= {j.name for j in d.resolve_all_job_defs()}
    dg.Definitions.validate_loadable(d)


def test_opencast_appears_when_configured(monkeypatch):
    for name, value in {"OPENCAST_URL": "https://engage.example", "OPENCAST_USER": "u", "OPENCAST_PASSWORD": "p",
                        "OPENCAST_MATOMO_SITE": "2"}.items():
        monkeypatch.setenv(name, value)
    d = defs()
    keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
    assert {"opencast_useractions", "opencast_episodes", "opencast_matomo_events"} <= keys
    assert {s.name: s.cron_schedule for s in d.schedules}["opencast_harvest"] == "*/2 * * * *"
    dg.Definitions.validate_loadable(d)


def test_assets_are_described_grouped_owned_and_kinded():
    for spec in defs().resolve_all_asset_specs():
        assert spec.description and len(spec.description) > 40
        assert spec.group_name == ("opencast" if spec.key.path[0].startswith("opencast_") else "demo_site")
        assert spec.owners == ["team:analytics"]
        assert spec.kinds


def test_the_code_location_validates_like_ci_and_dagster_dev_load_it(tmp_path):
    """`dagster definitions validate` loads workspace.yaml exactly as `dagster dev` does."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", str(root / "workspace.yaml")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Validation successful for code location analytics_ingest" in done.stdout + done.stderr


def _evaluate(definitions, schedule, when: str):
    import datetime as dt

    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime.fromisoformat(when),
                                        repository_def=definitions.get_repository_def())
    return list(schedule.evaluate_tick(context).run_requests or [])


def test_cloudwatch_replay_and_opencast_days_are_scheduled_for_yesterday(monkeypatch):
    """Issue #13 item 3: nothing scheduled the replay or the Opencast daily assets."""
    monkeypatch.setenv("CLOUDWATCH_SITES", "demo_site")
    monkeypatch.setenv("OPENCAST_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENCAST_TIMEZONE", "America/New_York")
    d = defs()
    schedules = {s.name: s for s in d.schedules}
    replay, opencast = schedules["demo_site_replay_daily"], schedules["opencast_daily_yesterday"]
    assert (replay.cron_schedule, replay.job_name) == ("30 1 * * *", "demo_site_replay")
    assert (opencast.cron_schedule, opencast.job_name, opencast.execution_timezone) == (
        "0 3 * * *", "opencast_daily", "America/New_York")
    (request,) = _evaluate(d, replay, "2024-03-16T01:30:00+00:00")
    assert request.partition_key == "2024-03-15"
    (request,) = _evaluate(d, opencast, "2024-03-16T03:00:00-04:00")
    assert request.partition_key == "2024-03-15"
    job = d.resolve_job_def("opencast_daily")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {
        "opencast_useractions", "opencast_episodes"}


def test_opencast_events_link_to_their_sites_days_across_zones(monkeypatch):
    """A time-window mapping cannot cross zones: an Opencast server in another zone maps by date."""
    monkeypatch.setenv("OPENCAST_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENCAST_MATOMO_SITE", "1")
    for zone, mapping in (("UTC", dg.TimeWindowPartitionMapping), ("America/New_York", dg.IdentityPartitionMapping)):
        monkeypatch.setenv("OPENCAST_TIMEZONE", zone)
        d = defs()
        dg.Definitions.validate_loadable(d)
        graph = d.resolve_asset_graph()
        archive = dg.AssetKey(["demo_site", "matomo_archive"])
        assert dg.AssetKey("opencast_matomo_events") in graph.get(archive).parent_keys
        assert isinstance(graph.get_partition_mapping(archive, dg.AssetKey("opencast_matomo_events")), mapping), zone
    monkeypatch.setenv("OPENCAST_MATOMO_SITE", "7")  # events for another site: no edge to this one
    graph = defs().resolve_asset_graph()
    assert dg.AssetKey("opencast_matomo_events") not in graph.get(dg.AssetKey(["demo_site", "matomo_archive"])).parent_keys


def test_every_matomo_writer_and_only_they_run_in_the_matomo_pool():
    """Issue #13 item 3: the cap across sites holds for runs from the UI and backfills too, so it is
    a pool on the steps (not a tag on some jobs); one writer per site is the ledger's site lock."""
    d = defs()
    pools = {}
    for key in d.resolve_asset_graph().get_all_asset_keys():
        pools[key.to_user_string()] = d.resolve_assets_def(key).op.pool
    writers = {k for k, pool in pools.items() if pool == "matomo"}
    assert writers == {"demo_site/matomo_import", "demo_site/matomo_replay", "opencast_matomo_events",
                       "demo_site/matomo_archive"}
    assert {pool for k, pool in pools.items() if k not in writers} == {None}
    assert all(not j.tags.get("analytics_ingest/matomo") for j in d.resolve_all_job_defs())


def test_the_environment_is_read_once_per_load_and_the_sites_file_once(monkeypatch):
    """Issue #14 item 1: one reading of the sites file per load, the same file the resources read."""
    from analytics_ingest.defs import location

    calls = []
    real = location.load_sites
    monkeypatch.setattr(location, "load_sites", lambda path: calls.append(path) or real(path))
    d = defs()
    assert len(calls) == 1
    assert d.resources["ingest"].sites_file == str(calls[0])


def test_secrets_reach_the_resources_as_env_vars_never_as_values(monkeypatch):
    """Issue #14 item 1: a token or a password in a URL is shown as its variable's name, not its value."""
    secrets = {"MATOMO_URL": "https://matomo.example.org", "MATOMO_API_TOKEN": "t0k3n-not-for-the-ui",
               "MATOMO_DB_URL": "mysql://matomo:db-pa55word@db/matomo",
               "ANALYTICS_INGEST_LEDGER_URL": "postgresql://ingest:ledger-pa55word@db/ingest",
               "OPENCAST_URL": "https://engage.example", "OPENCAST_USER": "u", "OPENCAST_PASSWORD": "oc-pa55word",
               "REDIS_URL": "redis://:redis-pa55word@cache:6379/0"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    d = defs()
    matomo, ingest, opencast = d.resources["matomo"], d.resources["ingest"], d.resources["opencast"]
    for field, name in ((matomo.token, "MATOMO_API_TOKEN"), (matomo.db_url, "MATOMO_DB_URL"),
                        (ingest.ledger_url, "ANALYTICS_INGEST_LEDGER_URL"), (opencast.password, "OPENCAST_PASSWORD"),
                        (opencast.redis_url, "REDIS_URL")):
        assert isinstance(field, dg.EnvVar) and field.env_var_name == name
    shown = repr({key: resource for key, resource in d.resources.items()})
    assert not [v for v in secrets.values() if "pa55word" in v or "t0k3n" in v if v in shown]
    dg.Definitions.validate_loadable(d)


def test_unset_resources_read_the_same_environment_variables_as_the_cli(monkeypatch, tmp_path):
    """The embedded default needs no configuration: an unset field is the engine's env var (or default)."""
    from analytics_ingest.defs.resources import ArchiveRunnerResource, IngestResource, MatomoResource

    monkeypatch.setenv("ANALYTICS_INGEST_HOME", str(tmp_path))
    monkeypatch.delenv("MATOMO_URL", raising=False)
    monkeypatch.delenv("MATOMO_API_TOKEN", raising=False)
    settings = IngestResource(matomo=MatomoResource()).settings()
    assert (settings.home, settings.offline) == (tmp_path, True)
    monkeypatch.setenv("MATOMO_ARCHIVE_RUNNER", "local")
    assert ArchiveRunnerResource().archives_itself and not ArchiveRunnerResource(kind="none").archives_itself


def test_assets_carry_code_versions_and_dagsters_standard_table_metadata():
    """Issue #14 item 3: `code_version` on every asset, `dagster/column_schema` on the table outputs."""
    d = defs()
    specs = {spec.key.to_user_string(): spec for spec in d.resolve_all_asset_specs()}
    assert all(spec.code_version for spec in specs.values())
    for key in ("demo_site/pretable", "demo_site/counter_metrics"):
        schema = specs[key].metadata["dagster/column_schema"]
        assert isinstance(schema, dg.TableSchema) and len(schema.columns) >= 7
    assert [c.name for c in specs["demo_site/pretable"].metadata["dagster/column_schema"].columns][:2] == [
        "serverTime", "browserName"]


def test_each_source_is_a_folder_of_defs_autoloaded():
    """Issue #14 item 2: definitions.py merges nothing by hand; a new source is a new folder."""
    from pathlib import Path

    import analytics_ingest.definitions as entry

    source = Path(entry.__file__).read_text()
    assert "load_from_defs_folder" in source and "Definitions.merge" not in source
    folders = {p.parent.name for p in (Path(entry.__file__).parent / "defs").glob("*/definitions.py")}
    assert folders == {"archive", "cloudwatch", "counter", "opencast", "usage", "weblogs"}
