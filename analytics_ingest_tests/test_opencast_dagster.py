"""Opencast through Dagster, with the fake Opencast and the fake Matomo: a day's user actions to a
file, its episodes to Parquet, and its actions as Matomo events exactly once across re-runs; the
incremental schedule's job moves the cursor."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pandas as pd
import pytest

from analytics_ingest.defs.location import read_location
from analytics_ingest.defs.opencast.assets import build_opencast_assets
from analytics_ingest.defs.opencast.schedules import build_opencast_harvest_job
from analytics_ingest.defs.resources import MatomoResource, OpencastResource
from analytics_ingest.opencast.harvest import CursorState
from analytics_ingest_tests.dagster_resources import configured_resources
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.fake_opencast import FakeOpencast, make_action, make_episode
from analytics_ingest_tests.helpers import SITES, TOKEN

DAY = dt.date(2024, 3, 1)
T0 = dt.datetime(2024, 3, 1, 15, 0, tzinfo=dt.timezone.utc)
USER, PASSWORD = "harvester", "not-a-real-secret"


def _opencast_environ(opencast: FakeOpencast, tmp_path) -> dict:
    """The Opencast settings of the location (which assets exist, their days) and of its resource."""
    return {"OPENCAST_URL": opencast.url, "OPENCAST_USER": USER, "OPENCAST_PASSWORD": PASSWORD,
            "OPENCAST_START_DATE": "2024-02-01", "OPENCAST_MATOMO_SITE": "2",
            "OPENCAST_CURSOR": str(tmp_path / "cursor.json")}


def _resources(world, **opencast_fields) -> dict:
    opencast, matomo, tmp_path = world
    env = _opencast_environ(opencast, tmp_path)
    resource = OpencastResource(url=env["OPENCAST_URL"], user=USER, password=PASSWORD,
                                start_date=env["OPENCAST_START_DATE"], matomo_site=env["OPENCAST_MATOMO_SITE"],
                                cursor=env["OPENCAST_CURSOR"], **opencast_fields)
    return configured_resources(tmp_path / "home", matomo=MatomoResource(url=matomo.url, token=TOKEN), opencast=resource)


@pytest.fixture
def world(tmp_path, monkeypatch):
    with FakeOpencast(USER, PASSWORD) as opencast, FakeMatomo(token=TOKEN, sites=SITES) as matomo:
        opencast.episodes["mp-1"] = make_episode("mp-1", title="Lecture 1", created="2024-03-01T14:00:00Z")
        opencast.episodes["mp-2"] = make_episode("mp-2", title="Bare", attachments=False,
                                                 created="2024-03-01T16:00:00Z")
        for name in ("ANALYTICS_INGEST_LEDGER_URL",):  # an unset field reads it
            monkeypatch.delenv(name, raising=False)
        yield opencast, matomo, tmp_path
        assert matomo.errors == []


def _run(world, partition: str):
    opencast, _matomo, tmp_path = world
    plan = read_location(_opencast_environ(opencast, tmp_path)).opencast
    result = dg.materialize(build_opencast_assets(plan), partition_key=partition,
                            resources=_resources(world), raise_on_error=False)
    assert result.success
    return {e.materialization.asset_key.path[-1]: {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def test_a_day_goes_to_files_parquet_and_matomo_events_exactly_once(world):
    opencast, matomo, tmp_path = world
    opencast.actions += [make_action(n, T0 + dt.timedelta(minutes=n), "mp-1" if n % 2 else "mp-2",
                                     type="PLAY" if n % 3 == 0 else "HEARTBEAT") for n in range(1, 13)]
    first = _run(world, DAY.isoformat())
    ua = first["opencast_useractions"]
    assert ua["fetched"] == ua["delivered"] == 12 and ua["episodes_without_attachments"] == 6
    lines = [json.loads(line) for line in open(ua["output"], encoding="utf-8")]
    assert sorted(m["action_id"] for m in lines) == list(range(1, 13))
    assert all(m["timestamp"].endswith(("Z", "+00:00")) for m in lines)
    events = matomo.hits(2)
    assert len(events) == 12 and first["opencast_matomo_events"]["delivered"] == 12
    assert {e["e_a"] for e in events} == {"PLAY", "HEARTBEAT"} and {e["e_n"] for e in events} == {"Lecture 1", "Bare"}
    assert all(e["cip"] == "203.0.113.7" for e in events)
    episodes = pd.read_parquet(first["opencast_episodes"]["parquet"])
    assert sorted(episodes["mpid"]) == ["mp-1", "mp-2"] and first["opencast_episodes"]["without_attachments"] == 1

    opencast.actions.append(make_action(13, T0 + dt.timedelta(hours=2), "mp-1"))  # a late action
    second = _run(world, DAY.isoformat())
    assert second["opencast_matomo_events"]["delivered"] == 1
    assert len(matomo.hits(2)) == 13 and matomo.duplicates() == {}


def test_the_incremental_job_harvests_since_the_cursor(world):
    opencast, _matomo, tmp_path = world
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    (tmp_path / "cursor.json").write_text(CursorState(last_created=now - dt.timedelta(minutes=10)).to_json())
    opencast.actions += [make_action(n, now - dt.timedelta(minutes=5 - n), "mp-1") for n in range(1, 4)]
    out = tmp_path / "stream-{day}.jsonl"
    resources = _resources(world, output=str(out))
    opencast_harvest_job = build_opencast_harvest_job()
    result = opencast_harvest_job.execute_in_process(resources=resources)
    assert result.success
    written = tmp_path / f"stream-{now.date().isoformat()}.jsonl"
    assert sorted(json.loads(line)["action_id"] for line in open(written)) == [1, 2, 3]
    assert opencast_harvest_job.execute_in_process(resources=resources).success
    assert sorted(json.loads(line)["action_id"] for line in open(written)) == [1, 2, 3]  # cursor moved
