"""The Opencast user-action harvester engine against a fake Opencast, moto and real Redis."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import boto3
import pytest
from moto import mock_aws

from analytics_ingest.cli import harvest as oc_cli
from analytics_ingest.errors import ConfigError, DeliveryError
from analytics_ingest.opencast.client import OpencastClient, OpencastError, as_list
from analytics_ingest.opencast.deliver import JsonLinesSink, SqsSink, make_sink
from analytics_ingest.opencast.enrich import (
    Enricher,
    EpisodeLookup,
    LocalEpisodeCache,
    RedisEpisodeCache,
    build_message,
    episode_document,
)
from analytics_ingest.opencast.harvest import (
    CursorState,
    FileCursorStore,
    Harvester,
    MemoryCursorStore,
    S3CursorStore,
    SpanTooLong,
    open_cursor_store,
)
from analytics_ingest.opencast.matomo_events import append_to_journal, event_category
from analytics_ingest.opencast.run import harvest_once
from analytics_ingest.opencast.settings import OpencastSettings
from analytics_ingest_tests.fake_opencast import FakeOpencast, make_action, make_episode
from analytics_ingest_tests.services import REDIS_HOST, REDIS_PORT, require_service

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, 15, 0, 0, tzinfo=UTC)
USER, PASSWORD = "harvester", "not-a-real-secret"


@pytest.fixture
def fake():
    with FakeOpencast(USER, PASSWORD) as server:
        server.episodes["mp-1"] = make_episode("mp-1")
        yield server


def client_for(server, **kw) -> OpencastClient:
    kw.setdefault("timeout", 5)
    kw.setdefault("sleep", lambda s: None)  # no real waiting between retries
    return OpencastClient(server.url, USER, PASSWORD, **kw)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def ids(pages) -> list:
    return [a["id"] for page in pages for a in page]


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield


# -- client: auth, paging, quirks, fallbacks, retries ------------------------------------------

def test_digest_auth_and_paging(fake):
    fake.actions = [make_action(i, at(i)) for i in range(1, 26)]
    client = client_for(fake)
    pages = list(client.user_actions(T0, at(300), batch_size=10))
    assert [len(p) for p in pages] == [10, 10, 5]
    assert ids(pages) == list(range(1, 26))
    assert fake.challenges >= 1  # a real digest challenge was answered
    sent = fake.requests_to("/usertracking/actions.json")
    assert [p["offset"] for p in sent[1:]] == ["0", "10", "20"]  # first request is the probe
    assert sent[1]["start"] == "20240301150000" and sent[1]["limit"] == "10"


def test_wrong_password_is_one_line_config_error(fake):
    client = OpencastClient(fake.url, USER, "wrong-password-xyz", timeout=5)
    with pytest.raises(ConfigError) as err:
        list(client.user_actions(T0, at(60)))
    message = str(err.value)
    assert "\n" not in message and "401" in message and "wrong-password-xyz" not in message


def test_single_action_object_and_empty_without_action_key(fake):
    fake.actions = [make_action(7, at(5))]
    client = client_for(fake)
    assert ids(client.user_actions(T0, at(60))) == [7]
    assert list(client.user_actions(at(100), at(200))) == []
    assert as_list(None) == [] and as_list({"a": 1}) == [{"a": 1}]


def test_server_without_start_end_falls_back_to_day(fake):
    fake.supports_window = False
    day1_late = T0.replace(hour=23, minute=59, second=50)
    fake.actions = [make_action(1, T0 - dt.timedelta(hours=2)),  # same day, before the window
                    make_action(2, day1_late),
                    make_action(3, day1_late + dt.timedelta(seconds=20)),  # next day
                    make_action(4, day1_late + dt.timedelta(hours=3))]  # next day, after the window
    client = client_for(fake)
    got = ids(client.user_actions(T0, day1_late + dt.timedelta(minutes=1)))
    assert client.window_mode() == "day"
    assert got == [2, 3]
    days = [p.get("day") for p in fake.requests_to("/usertracking/actions.json") if "day" in p]
    assert days == ["20240301", "20240302"]


def test_slow_page_and_500_are_retried(fake):
    fake.actions = [make_action(i, at(i)) for i in range(1, 6)]
    client = client_for(fake, timeout=0.5, window_mode="start_end")
    fake.slow_requests, fake.fail_statuses = 1, [500]
    assert ids(client.user_actions(T0, at(60), batch_size=2)) == [1, 2, 3, 4, 5]
    assert client.requests_made >= 5  # 3 pages + the slow one + the 500


def test_persistent_500_gives_one_line_error(fake):
    fake.fail_statuses = [500] * 10
    client = client_for(fake, max_attempts=3, window_mode="start_end")
    with pytest.raises(OpencastError) as err:
        list(client.user_actions(T0, at(60)))
    assert "\n" not in str(err.value) and "3 times" in str(err.value) and PASSWORD not in str(err.value)


def test_episodes_created_pages_and_live_info(fake):
    for n in range(5):
        fake.episodes[f"mp-new-{n}"] = make_episode(f"mp-new-{n}", created=f"2024-03-02T1{n}:00:00Z")
    client = OpencastClient(fake.url, USER, PASSWORD, timeout=5, admin_url=fake.url)
    got = [e["id"] for e in client.episodes_created(dt.date(2024, 3, 2), page_size=2)]
    assert got == [f"mp-new-{n}" for n in range(5)]
    fake.workflows["mp-1"] = [
        {"id": "5", "operations": {"operation": [{"id": "capture", "started": "1709301600000",
                                                  "completed": "1709305200000"}]}},
        {"id": "9", "operations": {"operation": [
            {"id": "capture", "started": 1709301600000, "completed": 1709308800000},
            {"id": "retract-element", "completed": 1709395200000}]}},
    ]
    info = client.live_info("mp-1")
    assert info.live_stream and info.live_duration_ms == 7_200_000  # the newest workflow (id 9)
    assert info.available == dt.datetime(2024, 3, 2, 16, 0, tzinfo=UTC)
    assert client.live_info("unknown") is None
    doc = episode_document(client.episode("mp-1"), info)
    assert doc["live_stream"] == 1 and doc["crn"] == "12345" and doc["slides"][0]["time"] == "T00:01:00:0F1000"
    bare = make_episode("mp-bare", attachments=False)
    assert episode_document(bare)["mpid"] == "mp-bare"  # still a document without attachments


# -- harvester: span guard, de-duplication, cursors ----------------------------------------------

def test_span_guard_refuses_long_window_and_override_allows(fake):
    fake.actions = [make_action(1, at(10))]
    store = MemoryCursorStore(CursorState(T0))
    # 1 day + 10 s: timedelta.seconds is 10 (the original's bug would let it through).
    end = T0 + dt.timedelta(days=1, seconds=10)
    guarded = Harvester(client_for(fake), store, max_span=3600, now=lambda: end)
    with pytest.raises(SpanTooLong) as err:
        guarded.run(lambda batch: None)
    assert "\n" not in str(err.value) and "--allow-long-span" in str(err.value)
    assert store.state == CursorState(T0)
    got = []
    allowed = Harvester(client_for(fake), store, max_span=3600, allow_long_span=True, now=lambda: end)
    allowed.run(got.extend)
    assert [a["id"] for a in got] == [1]
    with pytest.raises(ConfigError):
        Harvester(client_for(fake), store, max_span="3600")  # numbers only


def test_span_from_env_is_a_number():
    env = {"OPENCAST_URL": "http://x", "OPENCAST_USER": "u", "OPENCAST_PASSWORD": "pw-never-shown",
           "REDIS_URL": "redis://:redis-secret@localhost:6379/0"}
    assert OpencastSettings.from_env({**env, "MAX_START_END_SPAN": "7200"}).max_span == 7200.0
    assert OpencastSettings.from_env({**env, "MAX_START_END_SPAN": "0"}).max_span is None
    with pytest.raises(ConfigError):
        OpencastSettings.from_env({**env, "MAX_START_END_SPAN": "3h"})
    shown = repr(OpencastSettings.from_env(env))
    assert "pw-never-shown" not in shown and "redis-secret" not in shown


def test_boundary_second_is_refetched_and_deduplicated(fake):
    fake.actions = [make_action(1, at(5)), make_action(2, at(10)), make_action(3, at(10.4))]
    store = MemoryCursorStore()
    now = [at(30)]
    harvester = Harvester(client_for(fake), store, now=lambda: now[0], default_lookback=dt.timedelta(minutes=1))
    first = []
    stats = harvester.run(first.extend)
    assert [a["id"] for a in first] == [1, 2, 3]
    assert store.state == CursorState(at(10), frozenset({"2", "3"}))
    # Action 4 lands in the boundary second after the first query; 5 is later.
    fake.actions += [make_action(4, at(10.9)), make_action(5, at(40))]
    now[0] = at(60)
    second = []
    stats = harvester.run(second.extend)
    assert [a["id"] for a in second] == [4, 5]
    assert stats.duplicates == 2 and stats.fetched == 4
    assert store.state == CursorState(at(40), frozenset({"5"}))
    # The state survives the Dagster sensor cursor's JSON round trip.
    assert CursorState.from_json(store.state.to_json()) == store.state


def test_quiet_window_moves_cursor_to_end_and_explicit_window_leaves_it(fake):
    store = MemoryCursorStore(CursorState(T0))
    harvester = Harvester(client_for(fake), store, now=lambda: at(120))
    harvester.run(lambda b: None)
    assert store.state == CursorState(at(120))
    fake.actions = [make_action(1, at(500))]
    got = []
    stats = harvester.run(got.extend, start=at(400), end=at(600))
    assert len(got) == 1 and not stats.cursor_saved and store.state == CursorState(at(120))


def test_file_cursor_store_roundtrip_and_legacy(tmp_path):
    store = open_cursor_store(tmp_path / "opencast" / "cursor.json")
    assert isinstance(store, FileCursorStore) and store.load() == CursorState()
    state = CursorState(T0, frozenset({"9"}))
    store.save(state)
    assert open_cursor_store(tmp_path / "opencast" / "cursor.json").load() == state
    assert CursorState.from_json("20240301150000") == CursorState(T0)  # the original's S3 body


def test_s3_cursor_store(aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="harvest-ts")
    store = open_cursor_store("s3://harvest-ts/opencast/last-action", s3_client=s3)
    assert isinstance(store, S3CursorStore) and store.load() == CursorState()
    s3.put_object(Bucket="harvest-ts", Key="opencast/last-action", Body=b"20240301150000")
    assert store.load() == CursorState(T0)  # a cursor left by the original harvester
    state = CursorState(at(42), frozenset({"1", "2"}))
    store.save(state)
    assert S3CursorStore("harvest-ts", "opencast/last-action", s3).load() == state
    with pytest.raises(ConfigError) as err:
        S3CursorStore("no-such-bucket", "k", s3).load()
    assert "does not exist" in str(err.value)


# -- enrichment ------------------------------------------------------------------------------

def test_message_shape_and_episode_without_attachments(fake):
    fake.episodes["mp-bare"] = make_episode("mp-bare", attachments=False, series=None)
    fake.actions = [make_action(1, at(1), "mp-1", is_playing=2), make_action(2, at(2), "mp-bare", user_id=None),
                    make_action(3, at(3), "mp-gone")]
    client = client_for(fake)
    enricher = Enricher(EpisodeLookup(client, LocalEpisodeCache(60)))
    sink_rows = []

    class ListSink:
        def write(self, messages):
            sink_rows.extend(messages)
            return len(messages)

    harvester = Harvester(client, MemoryCursorStore(), now=lambda: at(10), default_lookback=dt.timedelta(seconds=10))
    summary = harvest_once(harvester, enricher, ListSink())
    assert (summary.fetched, summary.delivered, summary.without_attachments, summary.episodes_missing) == (3, 3, 1, 1)
    live, bare, gone = sink_rows
    assert live["timestamp"] == "2024-03-01T15:00:01+00:00" and live["is_live"] == 1
    assert live["ip"] == "203.0.113.7" and live["proxies"] == ["10.0.0.1"] and live["proxy1"] == "10.0.0.1"
    assert live["action"] == {"type": "HEARTBEAT", "inpoint": 10, "outpoint": 40, "length": 30, "is_playing": True}
    ep = live["episode"]
    assert (ep["title"], ep["course"], ep["year"], ep["term"], ep["cdn"], ep["duration"]) == \
        ("Lecture 1", "CSCI E-1", "2024", "01", "12345", 3600000)
    assert ep["start"] == "2024-03-01T14:00:00+00:00" and ep["presenter_still"].endswith("presenter.jpg")
    assert bare["episode"]["title"] == "Lecture 1" and "series" not in bare["episode"] and bare["huid"] is None
    assert gone["episode"] == {} and gone["mpid"] == "mp-gone"
    assert set(live) >= {"action_id", "mpid", "session_id", "huid", "useragent", "ip", "is_live", "action", "episode"}


def test_local_cache_ttl_and_file(fake, tmp_path):
    now = [1000.0]
    cache = LocalEpisodeCache(30, tmp_path / "cache.json", clock=lambda: now[0])
    lookup = EpisodeLookup(client_for(fake), cache)
    lookup.get("mp-1"), lookup.get("mp-1"), lookup.get("mp-gone"), lookup.get("mp-gone")
    assert (lookup.fetches, lookup.hits) == (2, 2)  # "not found" is cached too
    now[0] += 31
    lookup.get("mp-1")
    assert lookup.fetches == 3
    cache.flush()
    reloaded = LocalEpisodeCache(30, tmp_path / "cache.json", clock=lambda: now[0])
    assert json.loads(reloaded.get("mp-1"))["id"] == "mp-1"


def test_redis_episode_cache(fake):
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    prefix = f"test:{uuid.uuid4().hex}:"
    try:
        lookup = EpisodeLookup(client_for(fake), RedisEpisodeCache(r, 120, prefix=prefix))
        assert lookup.get("mp-1")["id"] == "mp-1"
        second = EpisodeLookup(client_for(fake), RedisEpisodeCache(r, 120, prefix=prefix))
        assert second.get("mp-1")["id"] == "mp-1" and (second.hits, second.fetches) == (1, 0)
        assert 0 < r.ttl(prefix + "mp-1") <= 120
        assert lookup.get("mp-gone") is None and r.get(prefix + "mp-gone") == b"null"
    finally:
        for key in r.scan_iter(prefix + "*"):
            r.delete(key)


# -- delivery --------------------------------------------------------------------------------

def _messages(n: int, start: int = 1) -> list[dict]:
    return [build_message(make_action(i, at(i)), make_episode("mp-1")) for i in range(start, start + n)]


class FlakySqs:
    """Wraps a real (moto) client; the first batch call reports some entries failed."""

    def __init__(self, inner, fail_ids=("1", "3"), sender_fault=False, always=False):
        self.inner, self.fail_ids, self.sender_fault, self.always = inner, set(fail_ids), sender_fault, always
        self.calls: list[list[str]] = []

    def get_queue_url(self, **kw):
        return self.inner.get_queue_url(**kw)

    def send_message_batch(self, QueueUrl, Entries):  # noqa: N803
        self.calls.append([e["Id"] for e in Entries])
        if len(self.calls) == 1 or self.always:
            ok = [e for e in Entries if e["Id"] not in self.fail_ids]
            bad = [e for e in Entries if e["Id"] in self.fail_ids]
            result = self.inner.send_message_batch(QueueUrl=QueueUrl, Entries=ok) if ok else {"Successful": []}
            result["Failed"] = [{"Id": e["Id"], "SenderFault": self.sender_fault, "Code": "InternalError",
                                 "Message": "try again"} for e in bad]
            return result
        return self.inner.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)


def _drain(sqs, url) -> list[dict]:
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        if not got.get("Messages"):
            return out
        for m in got["Messages"]:
            out.append(m)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_sqs_sink_batches_and_retries_only_failed_entries(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="user-actions")["QueueUrl"]
    flaky = FlakySqs(sqs)
    sink = make_sink("sqs://user-actions", sqs_client=flaky)
    assert isinstance(sink, SqsSink) and sink.queue_url == url
    assert sink.write(_messages(12)) == 12
    assert flaky.calls[0] == [str(n) for n in range(10)] and flaky.calls[1] == ["1", "3"]
    assert flaky.calls[2] == ["10", "11"]
    got = _drain(sqs, url)
    assert sorted(json.loads(m["Body"])["action_id"] for m in got) == list(range(1, 13))
    assert {m["MessageAttributes"]["action_id"]["StringValue"] for m in got} == {str(i) for i in range(1, 13)}


def test_sqs_sink_gives_up_with_counts(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.create_queue(QueueName="user-actions")
    sink = SqsSink("user-actions", FlakySqs(sqs, always=True), max_attempts=3, sleep=lambda s: None)
    with pytest.raises(DeliveryError) as err:
        sink.write(_messages(5))
    assert "3 of 5" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        SqsSink("sqs://missing-queue", sqs)


def test_sqs_fifo_deduplicates_by_action_id(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="user-actions.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sink = make_sink(url, sqs_client=sqs)
    sink.write(_messages(3))
    sink.write(_messages(3))  # a re-send of the same actions
    assert len(_drain(sqs, url)) == 3


def test_json_lines_sink_and_routing(tmp_path, capsys):
    path = tmp_path / "out" / "actions.jsonl"
    sink = make_sink(str(path))
    assert isinstance(sink, JsonLinesSink)
    sink.write(_messages(2))
    sink.write(_messages(1, start=3))
    sink.close()
    assert [json.loads(line)["action_id"] for line in path.read_text().splitlines()] == [1, 2, 3]
    out = make_sink("-")
    out.write(_messages(1))
    assert json.loads(capsys.readouterr().out)["action_id"] == 1


def test_matomo_journal_appends_each_action_once(tmp_path):
    journal = tmp_path / "events.jsonl"
    messages = _messages(3)
    assert append_to_journal(journal, messages) == 3
    assert append_to_journal(journal, messages + _messages(1, start=4)) == 1
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [line["action_id"] for line in lines] == [1, 2, 3, 4]
    first = lines[0]
    assert (first["e_c"], first["e_a"], first["e_n"], first["ip"]) == ("video", "HEARTBEAT", "Lecture 1", "203.0.113.7")
    assert first["time"] == "2024-03-01T15:00:01+00:00" and first["ua"].startswith("Mozilla")
    assert event_category("paella:button:action;play") == "paella:button"
    with open(journal, "a") as torn:
        torn.write('{"action_id": 9')  # a torn line from a crash
    append_to_journal(journal, _messages(1, start=5))
    assert journal.read_text().splitlines()[-1].startswith('{"action_id":5')


# -- CLI ---------------------------------------------------------------------------------------

def _env(fake, tmp_path, **extra) -> dict:
    return {"OPENCAST_URL": fake.url, "OPENCAST_USER": USER, "OPENCAST_PASSWORD": PASSWORD,
            "ANALYTICS_INGEST_HOME": str(tmp_path / "home"), **extra}


@pytest.mark.parametrize("argv, fragment", [
    (["harvest", "--start", "yesterday", "--output", "-"], "--start"),
    (["harvest", "--batch-size", "0", "--output", "-"], "--batch-size"),
    (["harvest", "--interval", "x", "--output", "-"], "--interval"),
    (["harvest"], "--output"),
])
def test_cli_argument_errors_are_one_line(fake, tmp_path, capsys, argv, fragment):
    assert oc_cli.main(argv, env=_env(fake, tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and PASSWORD not in err


def test_cli_missing_env_is_one_line(capsys):
    assert oc_cli.main(["harvest", "--output", "-"], env={}) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "OPENCAST_URL" in err


def test_cli_span_guard_and_cursor_file(fake, tmp_path, capsys):
    out = tmp_path / "actions.jsonl"
    cursor = tmp_path / "home" / "opencast" / "cursor.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(CursorState(T0 - dt.timedelta(days=400)).to_json())
    fake.actions = [make_action(1, dt.datetime.now(UTC) - dt.timedelta(minutes=1))]
    env = _env(fake, tmp_path, MAX_START_END_SPAN="10800")
    assert oc_cli.main(["harvest", "--output", str(out)], env=env) == 2
    err = capsys.readouterr().err
    assert "MAX_START_END_SPAN" in err and len(err.strip().splitlines()) == 1
    assert oc_cli.main(["harvest", "--output", str(out), "--allow-long-span",
                        "--matomo-journal", str(tmp_path / "events.jsonl")], env=env) == 0
    summary = capsys.readouterr().out
    assert "fetched 1, duplicates dropped 0, delivered 1" in summary
    assert CursorState.from_json(cursor.read_text()).boundary_ids == frozenset({"1"})
    # The next pass starts from the stored cursor, refetches the boundary second, delivers nothing new.
    assert oc_cli.main(["harvest", "--output", str(out), "--interval", "1"], env=env, max_passes=1) == 0
    assert "fetched 1, duplicates dropped 1, delivered 0" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 1
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 1
