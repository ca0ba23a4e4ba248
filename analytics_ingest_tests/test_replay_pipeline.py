"""The missed-event replay end to end, with moto's CloudWatch Logs and the fake Matomo: the daily
assets (fetch → replay → archive) and ``analytics-ingest replay START END``; reruns never double."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource
from moto import mock_aws

from analytics_ingest import metadata_keys as keys
from analytics_ingest.cli.main import main as cli_main
from analytics_ingest.cloudwatch import make_logs_client
from analytics_ingest.cloudwatch.pipeline import CloudwatchConfig
from analytics_ingest.cloudwatch.window import to_ms
from analytics_ingest.defs.archive.assets import build_archive_assets
from analytics_ingest.defs.cloudwatch.assets import build_cloudwatch_assets, replay_key
from analytics_ingest.defs.resources import CloudWatchResource, MatomoResource
from analytics_ingest.sites import load_sites
from analytics_ingest_tests.dagster_resources import configured_resources
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN
from analytics_ingest_tests.test_cloudwatch import GROUP, STREAM, nginx_line

# Recent whole minutes (CloudWatch refuses events older than 14 days), inside one UTC day.
NOW = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
BASE = max(NOW - dt.timedelta(hours=3), NOW.replace(hour=0) + dt.timedelta(minutes=1))


@dataclass
class World:
    logs: object  # moto's CloudWatch Logs client
    fake: FakeMatomo
    home: Path
    sites_file: Path

    def resources(self, cloudwatch: CloudWatchResource, **overrides) -> dict:
        """The Dagster runs' resources, configured here (the CLI reads the environment instead)."""
        return configured_resources(self.home, sites_file=self.sites_file,
                                    matomo=MatomoResource(url=self.fake.url, token=TOKEN), cloudwatch=cloudwatch,
                                    **overrides)

    def cli_environ(self, monkeypatch, **extra: str) -> None:
        """The same settings for ``analytics-ingest``, which is configured by its environment."""
        for name, value in {"ANALYTICS_INGEST_SITES": str(self.sites_file), "ANALYTICS_INGEST_HOME": str(self.home),
                            "CLOUDWATCH_SITES": "verify", "MATOMO_URL": self.fake.url, "MATOMO_API_TOKEN": TOKEN,
                            **extra}.items():
            monkeypatch.setenv(name, value)


@pytest.fixture
def world(tmp_path, monkeypatch):
    # moto's AWS: the standard credential chain (boto3 reads it from the environment)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-west-2",
                        "AWS_REGION": "eu-west-2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    sites = tmp_path / "sites.yaml"
    sites.write_text(
        "sites:\n  - id: 1\n    key: verify\n    name: Verify\n    main_url: https://www.example.gov.uk\n"
        f"    log_dir: {tmp_path}\n    start_date: {(NOW - dt.timedelta(days=30)).date()}\n"
    )
    for name in ("ANALYTICS_INGEST_LEDGER_URL", "MATOMO_ARCHIVE_RUNNER", "ANALYTICS_INGEST_CLOUDWATCH_S3"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), FakeMatomo(token=TOKEN, sites=SITES) as fake:
        logs = make_logs_client("eu-west-2")
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        yield World(logs, fake, tmp_path / "home", sites)
        assert fake.errors == []


def put_missed(logs, first: int, count: int) -> list[dt.datetime]:
    times = [BASE + dt.timedelta(seconds=40 * n) for n in range(first, first + count)]
    events = [{"timestamp": to_ms(ts), "message": nginx_line(ts, n)} for n, ts in zip(range(first, first + count), times)]
    healthy = BASE + dt.timedelta(seconds=7)
    events.append({"timestamp": to_ms(healthy), "message": nginx_line(healthy, 999, status="200")})
    logs.put_log_events(logGroupName=GROUP, logStreamName=STREAM, logEvents=sorted(events, key=lambda e: e["timestamp"]))
    return times


def test_the_window_command_replays_exactly_once_and_archives_the_day(world, capsys, monkeypatch):
    logs, fake = world.logs, world.fake
    world.cli_environ(monkeypatch, CLOUDWATCH_API="filter")
    times = put_missed(logs, 0, 8)
    start = (BASE - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (times[-1] + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli_main(["replay", start, end]) == 0
    out = capsys.readouterr().out
    assert "8 missed requests fetched" in out and "delivered 8" in out and "archived (none)" in out
    hits = fake.hits(1)
    assert len(hits) == 8 and fake.duplicates() == {}
    assert {h["cip"] for h in hits} == {f"198.51.100.{n + 1}" for n in range(8)}
    assert all(h["ua"] == "Mozilla/5.0 (X11)" and h["cdt"] for h in hits)
    assert len(fake.invalidations) == 1

    assert cli_main(["replay", start, end]) == 0  # the same window again: nothing new
    again = capsys.readouterr().out
    assert "delivered 0" in again and "skipped: no new hits" in again
    assert len(fake.hits(1)) == 8 and len(fake.invalidations) == 1

    assert cli_main(["replay", end, start]) == 2  # reversed: one line, no traceback
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "before it starts" in err


@pytest.mark.parametrize("store", ["local", "s3"])
def test_daily_assets_fetch_replay_and_archive_without_double_counting(world, store):
    logs, fake = world.logs, world.fake
    environ = {"CLOUDWATCH_SITES": "verify"}
    if store == "s3":  # events kept in S3 through dagster-aws's S3 resource
        import boto3

        boto3.client("s3", region_name="eu-west-2").create_bucket(
            Bucket="replay-events", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        environ["ANALYTICS_INGEST_CLOUDWATCH_S3"] = "s3://replay-events/verify"
    put_missed(logs, 0, 5)
    site = load_sites(world.sites_file)[0]
    config = CloudwatchConfig.from_env(environ)
    cloudwatch = CloudWatchResource(api=config.api, events_s3=config.events_s3)
    assets = build_cloudwatch_assets(site, config) + build_archive_assets(site, [replay_key(site)])
    from analytics_ingest.defs.weblogs.assets import build_site_assets

    upstream = build_site_assets(site)  # the archive asset also depends on the log import
    day = BASE.date().isoformat()

    def run():
        result = dg.materialize(assets + upstream, partition_key=day,
                                resources=world.resources(cloudwatch, s3=S3Resource(region_name="eu-west-2")),
                                selection=[a.key for a in assets], raise_on_error=False)
        assert result.success
        return {e.materialization.asset_key.path[-1]: {k: v.value for k, v in e.materialization.metadata.items()}
                for e in result.get_asset_materialization_events()}

    first = run()
    assert first["cloudwatch_missed_events"]["new_events"] == 5
    assert first["matomo_replay"][keys.DELIVERED] == 5
    assert first["matomo_archive"]["archived"] is True
    stored = first["cloudwatch_missed_events"]["location"]
    if store == "s3":
        import boto3

        assert stored.startswith("s3://replay-events/verify/")
        body = boto3.client("s3", region_name="eu-west-2").get_object(
            Bucket="replay-events", Key=stored.split("/", 3)[3])["Body"].read().decode()
        lines = [json.loads(line) for line in body.splitlines()]
    else:
        lines = [json.loads(line) for line in open(stored, encoding="utf-8")]
    assert [line["timestamp"] for line in lines] == sorted(line["timestamp"] for line in lines)

    put_missed(logs, 5, 3)  # more failures turn up later the same day
    second = run()
    assert second["cloudwatch_missed_events"]["new_events"] == 3
    assert second["matomo_replay"][keys.DELIVERED] == 3 and second["matomo_replay"]["already_in_journal"] == 5
    assert second["matomo_archive"]["archived"] is True
    third = run()
    assert third["matomo_replay"][keys.DELIVERED] == 0 and third["matomo_archive"]["archived"] is False
    assert len(fake.hits(1)) == 8 and fake.duplicates() == {}


def test_the_window_job_does_what_the_command_does(world):
    from analytics_ingest.defs.cloudwatch.jobs import build_replay_window_job

    logs, fake = world.logs, world.fake
    times = put_missed(logs, 0, 4)
    job = build_replay_window_job(load_sites(world.sites_file)[0])
    op = "verify_replay_window_op"
    config = {"ops": {op: {"config": {"start": (BASE - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                      "end": (times[-1] + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}}}}
    resources = world.resources(CloudWatchResource(api="filter"))
    assert job.execute_in_process(run_config=config, resources=resources).success
    assert job.execute_in_process(run_config=config, resources=resources).success  # again: nothing new
    assert len(fake.hits(1)) == 4 and fake.duplicates() == {} and len(fake.invalidations) == 1
    bad = {"ops": {op: {"config": {"start": "2024-03-14T10:00:00Z", "end": "2024-03-14T09:00:00Z"}}}}
    failed = job.execute_in_process(run_config=bad, resources=resources, raise_on_error=False)
    assert not failed.success
    failure = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "before it starts" in failure.step_failure_data.error.message
