"""Issue #13 item 4: the embedded default shows the whole mission offline. Its CloudWatch replay and
Opencast assets read the recorded days in ``analytics_ingest/demo`` through the same engine code
(fetcher, predicate, store, journal, importer; client, enrichment, journal) and send to the demo
site's outbox exactly once, with no AWS credentials and no network."""

from __future__ import annotations

import datetime as dt
import json
import socket
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pandas as pd
import pytest

from analytics_ingest import metadata_keys as keys
from analytics_ingest.cloudwatch.pipeline import CloudwatchConfig, fetch
from analytics_ingest.cloudwatch.recorded import RecordedLogsClient
from analytics_ingest.definitions import build_defs
from analytics_ingest.defs.location import read_location
from analytics_ingest.defs.resources import IngestResource
from analytics_ingest.demo import CLOUDWATCH_RECORDING, DEMO_DIR, is_offline_demo
from analytics_ingest.errors import ConfigError
from analytics_ingest.opencast.client import OpencastClient
from analytics_ingest.sites import demo_sites_path

DAY = "2024-03-14"
MISSED = 36  # the recording's 502/504 tracker requests of site 1 on the day (see _expected_missed)
ACTIONS = 38  # the recorded day's user actions


def _expected_missed() -> int:
    """Counted here without the engine: nginx stream, status >= 500, idsite=1 and rec=1, not the smoke
    test, inside the UTC day."""
    data = json.loads(CLOUDWATCH_RECORDING.read_text())
    lo = int(dt.datetime(2024, 3, 14, tzinfo=dt.timezone.utc).timestamp() * 1000)
    count = 0
    for event in data["events"]:
        if not event["logStreamName"].startswith("matomo-nginx") or not lo <= event["timestamp"] < lo + 86_400_000:
            continue
        line = json.loads(event["message"])
        query = parse_qs(urlsplit(line["path"]).query)
        count += (int(line["status"]) >= 500 and query.get("idsite") == ["1"] and query.get("rec") == ["1"]
                  and line["user_agent"] != "Smokey Test")
    return count


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """The embedded default's environment: nothing configured, no AWS credentials, no network."""
    for name in ("ANALYTICS_INGEST_SITES", "ANALYTICS_INGEST_LEDGER_URL", "ANALYTICS_INGEST_CLOUDWATCH_S3",
                 "MATOMO_URL", "MATOMO_API_TOKEN", "MATOMO_ARCHIVE_RUNNER", "CLOUDWATCH_SITES", "CLOUDWATCH_API",
                 "CLOUDWATCH_ENDPOINT_URL", "OPENCAST_URL", "OPENCAST_USER", "OPENCAST_PASSWORD", "OPENCAST_OUTPUT",
                 "OPENCAST_MATOMO_SITE", "OPENCAST_START_DATE", "OPENCAST_TIMEZONE", "REDIS_URL", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    home = tmp_path / "home"
    connect = socket.socket.connect

    def no_network(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"the offline demo tried the network: {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", no_network)
    return home


def _default_location(home) -> tuple[dg.Definitions, dict]:
    """The embedded default's code location (built from an empty configuration) and its own
    resources, with the engine's state under ``home``."""
    definitions = build_defs(read_location({}))
    resources = dict(definitions.resources)
    resources["ingest"] = IngestResource(matomo=resources["matomo"], home=str(home),
                                         sites_file=resources["ingest"].sites_file)
    return definitions, resources


def _run(location: tuple[dg.Definitions, dict], selection: list[str], partition: str = DAY) -> dict:
    definitions, resources = location
    result = dg.materialize(list(definitions.assets), selection=selection, partition_key=partition,
                            resources=resources, raise_on_error=False)
    assert result.success
    return {e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def _outbox(home) -> list[dict]:
    path = home / "outbox" / "site-1.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_demo_is_the_default_and_real_settings_turn_it_off(monkeypatch, tmp_path):
    assert is_offline_demo({}) and is_offline_demo({"ANALYTICS_INGEST_SITES": str(demo_sites_path())})
    assert not is_offline_demo({"CLOUDWATCH_SITES": "demo_site"})
    assert not is_offline_demo({"OPENCAST_URL": "https://engage.example.edu"})
    assert not is_offline_demo({"ANALYTICS_INGEST_SITES": str(tmp_path / "sites.yaml")})


def test_a_recorded_day_is_fetched_like_a_live_one_through_the_same_fetcher(offline):
    assert _expected_missed() == MISSED
    config = CloudwatchConfig.from_env({"CLOUDWATCH_SITES": "demo_site", "CLOUDWATCH_API": f"recorded:{CLOUDWATCH_RECORDING}"})
    assert (config.api, config.recording) == ("recorded", str(CLOUDWATCH_RECORDING))
    site = type("Site", (), {"id": 1, "key": "demo_site"})()
    start = dt.datetime(2024, 3, 14, tzinfo=dt.timezone.utc)
    client = RecordedLogsClient(CLOUDWATCH_RECORDING)
    result = fetch(config, site, start, start + dt.timedelta(days=1), client=client)
    assert result.method == "filter_log_events" and result.complete and len(result.events) == MISSED
    assert result.pages > 1 and all(c["filterPattern"] == '"idsite=1"' for c in client.calls)  # paged, pre-filtered
    assert result.rejected > 0  # 200s, another site, rec=0, the smoke test, the PHP stream: the predicate's work
    with pytest.raises(ConfigError, match="not found"):  # the recording knows its log group, as AWS does
        fetch(CloudwatchConfig(api="recorded", recording=str(CLOUDWATCH_RECORDING), log_group="other"), site,
              start, start + dt.timedelta(days=1))
    with pytest.raises(ConfigError, match="insights, filter or recorded"):
        CloudwatchConfig.from_env({"CLOUDWATCH_API": "bogus"})


def test_the_recorded_engage_node_answers_like_the_server(offline):
    client = OpencastClient(f"file:{DEMO_DIR}", "", "")
    assert client.window_mode() == "start_end"  # the 1971 probe finds nothing, as on DCE's fork
    day = dt.datetime(2024, 3, 14, tzinfo=dt.timezone.utc)
    pages = list(client.user_actions(day, day + dt.timedelta(days=1), batch_size=10))
    assert [len(p) for p in pages] == [10, 10, 10, 8] and len({a["id"] for p in pages for a in p}) == ACTIONS
    assert list(client.user_actions(day - dt.timedelta(days=1), day - dt.timedelta(seconds=1))) == []
    assert [e["id"] for e in client.episodes_created(day.date())] == ["a9d0e2b7-3c4f-4e5a-8b6c-1f2e3d4c5b02"]
    with pytest.raises(ConfigError, match="file:"):
        OpencastClient("ftp://engage.example.edu", "u", "p")


def test_the_default_location_replays_the_recorded_cloudwatch_day_exactly_once(offline):
    home = offline
    d = _default_location(home)
    selection = ["demo_site/cloudwatch_missed_events", "demo_site/matomo_replay", "demo_site/matomo_archive"]
    first = _run(d, selection)
    missed, replay = first["demo_site/cloudwatch_missed_events"], first["demo_site/matomo_replay"]
    assert missed["fetched"] == missed["new_events"] == missed["stored_events"] == MISSED
    assert replay[keys.DELIVERED] == replay["appended"] == MISSED and replay["invalid"] == 0
    sent = _outbox(home)
    assert len(sent) == MISSED == len({(r["cdt"], r["pv_id"]) for r in sent})
    assert {r["cip"] for r in sent} <= {json.loads(e["message"])["ip"] for e in
                                        json.loads(CLOUDWATCH_RECORDING.read_text())["events"]
                                        if e["logStreamName"].startswith("matomo-nginx")}
    assert all(r["cdt"].startswith(DAY) for r in sent)
    assert "demo_site/matomo_archive" in first

    again = _run(d, selection)  # a rerun of the day (the nightly schedule, a backfill) sends nothing
    assert again["demo_site/cloudwatch_missed_events"]["new_events"] == 0
    assert again["demo_site/matomo_replay"][keys.DELIVERED] == 0
    assert len(_outbox(home)) == MISSED
    # The recording's one request just after midnight belongs to the next day; the day after has none.
    assert _run(d, selection[:2], "2024-03-15")["demo_site/matomo_replay"][keys.DELIVERED] == 1
    assert _run(d, selection[:2], "2024-03-16")["demo_site/cloudwatch_missed_events"]["fetched"] == 0
    assert len(_outbox(home)) == MISSED + 1


def test_the_default_location_harvests_the_recorded_opencast_day_exactly_once(offline):
    home = offline
    d = _default_location(home)
    selection = ["opencast_useractions", "opencast_episodes", "opencast_matomo_events"]
    first = _run(d, selection)
    ua = first["opencast_useractions"]
    assert ua["fetched"] == ua["delivered"] == ua["journaled"] == ACTIONS
    assert ua["episodes_missing"] == 0 and ua["episodes_without_attachments"] > 0
    messages = [json.loads(line) for line in open(ua["output"], encoding="utf-8")]
    assert len(messages) == ACTIONS and all(m["episode"]["title"] for m in messages)
    episodes = pd.read_parquet(first["opencast_episodes"]["parquet"])
    assert list(episodes["title"]) == ["Lecture 13: Heaps and Priority Queues"]
    assert first["opencast_matomo_events"]["delivered"] == ACTIONS
    events = _outbox(home)
    assert len(events) == ACTIONS and {e["e_a"] for e in events} == {"PLAY", "HEARTBEAT", "PAUSE", "SEEK"}
    assert all(e["idsite"] == 1 or e["idsite"] == "1" for e in events)

    again = _run(d, selection)
    assert again["opencast_matomo_events"]["delivered"] == 0 and len(_outbox(home)) == ACTIONS
