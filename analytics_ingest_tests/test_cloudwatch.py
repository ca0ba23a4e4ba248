"""CloudWatch fetch (Logs Insights and filter_log_events), the event store, and replay windows.

moto runs in-process (``mock_aws``) for both fetch paths and once as a real HTTP server for
``filter_log_events``. moto's Logs Insights evaluates ``fields``/``sort``/``limit`` and the time
range but no ``filter`` clause, and always answers ``Complete`` without ``statistics``: the
non-matching events put here therefore reach the client and prove that the client-side
predicate drops them; Failed/Running/throttling/recordsMatched are produced by thin wrappers
around the moto client (:class:`Wrapped`), said so in each test.
"""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from analytics_ingest.cloudwatch import (
    CloudEvent,
    EventStore,
    MissedEventQuery,
    days_touched,
    fetch_window,
    fetch_window_filter_events,
    make_logs_client,
    parse_window,
)
from analytics_ingest.cloudwatch.pipeline import CloudwatchConfig
from analytics_ingest.cloudwatch.window import to_ms
from analytics_ingest.config import load_settings
from analytics_ingest.errors import ConfigError, InputError
from analytics_ingest_tests.processes import free_port

GROUP = "matomo"
STREAM = "matomo-nginx/ecs/abc123"
OTHER_STREAM = "matomo-app/ecs/abc123"
# Whole minutes, recent (CloudWatch refuses events older than 14 days), in UTC.
BASE = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) - dt.timedelta(hours=2)


def no_sleep(_seconds: float) -> None:
    pass


def nginx_line(ts: dt.datetime, n: int, *, idsite: int = 1, status="502", ua="Mozilla/5.0 (X11)", rec="1",
               path_file="matomo.php", extra: str = "") -> str:
    """One Verify-style nginx JSON access line for a tracker request."""
    path = f"/{path_file}?action_name=Page%20{n}&idsite={idsite}&rec={rec}&r={n:06d}&_id=abcdef{n:010d}" \
           f"&url=https%3A%2F%2Fwww.example.gov.uk%2Fp{n}{extra}"
    return json.dumps({
        "msec": f"{ts.timestamp():.3f}", "ip": f"198.51.100.{n % 250 + 1}", "host": "analytics.example",
        "path": path, "status": status, "referrer": "https://www.example.gov.uk/", "user_agent": ua,
        "length": 43, "generation_time_milli": 0.012, "date": ts.isoformat(),
        "http_x_forwarded_for": f"203.0.113.{n % 250 + 1}",
    })


@pytest.fixture
def aws_env(monkeypatch):
    # Fake credentials only: moto must never reach a real account.
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-west-2",
                        "AWS_REGION": "eu-west-2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def logs(aws_env):
    with mock_aws():
        client = make_logs_client("eu-west-2")
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        client.create_log_stream(logGroupName=GROUP, logStreamName=OTHER_STREAM)
        yield client


def put(client, stream: str, items: list[tuple[dt.datetime, str]]) -> None:
    events = [{"timestamp": to_ms(ts), "message": msg} for ts, msg in sorted(items, key=lambda x: x[0])]
    for i in range(0, len(events), 1000):
        client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events[i:i + 1000])


def seed(client) -> tuple[set[str], dict]:
    """Missed requests over 20 minutes, plus lines the predicate must drop. Returns wanted messages."""
    wanted, noise = [], []
    for n in range(40):
        ts = BASE + dt.timedelta(seconds=30 * n + (n % 7))
        wanted.append((ts, nginx_line(ts, n, status="502" if n % 3 else 503)))
    for n in range(100, 110):
        ts = BASE + dt.timedelta(seconds=11 * n % 1200)
        noise += [
            (ts, nginx_line(ts, n, status="200")),  # recorded fine
            (ts, nginx_line(ts, n, status="499")),  # below the threshold as a NUMBER ("499" < 500)
            (ts, nginx_line(ts, n, idsite=12)),  # idsite=12 contains "idsite=1"
            (ts, nginx_line(ts, n, rec="0")),
            (ts, nginx_line(ts, n, ua="ELB-HealthChecker/2.0")),
            (ts, nginx_line(ts, n, ua="Smokey Test")),
            (ts, nginx_line(ts, n, path_file="index.php")),
            (ts, "not json at all"),
        ]
    put(client, STREAM, wanted + noise)
    other = [(BASE + dt.timedelta(seconds=5), nginx_line(BASE + dt.timedelta(seconds=5), 999))]
    put(client, OTHER_STREAM, other)  # right request, wrong log stream
    return {m for _, m in wanted}, {"noise": len(noise) + len(other)}


# -- the query -------------------------------------------------------------------------------------
def test_query_string_compares_status_as_a_number_and_filters_stream_agents_and_site():
    text = MissedEventQuery(site_id=3).insights_query()
    assert text.startswith("fields @timestamp, @message, @logStream, @ptr")
    assert "filter status >= 500" in text and "'500'" not in text
    assert "filter @logStream like /matomo-nginx/" in text
    assert 'filter user_agent != "ELB-HealthChecker/2.0"' in text and 'user_agent != "Smokey Test"' in text
    assert "idsite=3(&|$)" in text and "rec=1(&|$)" in text and text.endswith("limit 10000")
    assert MissedEventQuery(site_id=3, stream_pattern="a/b").insights_query().count(r"a\/b") == 1


def test_predicate_on_parsed_message():
    q = MissedEventQuery(site_id=1)
    ts = BASE
    assert q.matches(nginx_line(ts, 1), STREAM)
    assert q.matches(nginx_line(ts, 1, status=500), STREAM)  # int or text alike
    assert not q.matches(nginx_line(ts, 1, status="499"), STREAM)
    assert not q.matches(nginx_line(ts, 1, status="-"), STREAM)
    assert not q.matches(nginx_line(ts, 1, idsite=12), STREAM)
    assert not q.matches(nginx_line(ts, 1, rec="0"), STREAM)
    assert not q.matches(nginx_line(ts, 1, ua="Smokey Test"), STREAM)
    assert not q.matches(nginx_line(ts, 1, path_file="index.php"), STREAM)
    assert not q.matches(nginx_line(ts, 1), OTHER_STREAM)
    assert q.matches(nginx_line(ts, 1, path_file="piwik.php"))  # no stream given: not checked
    assert not q.matches("garbage")
    with pytest.raises(ConfigError, match="positive integer"):
        MissedEventQuery(site_id=0)
    with pytest.raises(ConfigError, match="not a valid regex"):
        MissedEventQuery(site_id=1, stream_pattern="(")


# -- Logs Insights -------------------------------------------------------------------------------
def test_insights_fetch_returns_exactly_the_missed_requests(logs):
    wanted, _ = seed(logs)
    result = fetch_window(logs, MissedEventQuery(site_id=1), BASE, BASE + dt.timedelta(minutes=21),
                          window_seconds=60, threads=4, sleep=no_sleep, poll_interval=0)
    assert {e.message for e in result.events} == wanted
    assert len(result.events) == len(wanted)  # the one-second margins doubled nothing
    assert [e.timestamp for e in result.events] == sorted(e.timestamp for e in result.events)
    assert result.complete and result.window_statuses == {"Complete": 21}
    assert result.rejected > 0 and result.splits == 0
    assert all(len(e.id) == 64 and e.log_stream == STREAM for e in result.events)


def test_window_over_the_row_cap_is_split_until_complete(logs):
    items = [(BASE + dt.timedelta(seconds=s), nginx_line(BASE + dt.timedelta(seconds=s), s)) for s in range(0, 290, 10)]
    put(logs, STREAM, items)
    result = fetch_window(logs, MissedEventQuery(site_id=1), BASE, BASE + dt.timedelta(minutes=5),
                          row_cap=5, sleep=no_sleep, poll_interval=0)
    assert {e.message for e in result.events} == {m for _, m in items}
    assert result.splits > 0 and result.complete and not result.truncated
    assert all(w.rows < 5 for w in result.windows)


def test_a_one_second_window_over_the_cap_is_reported_truncated(logs):
    ts = BASE + dt.timedelta(seconds=7)
    put(logs, STREAM, [(ts + dt.timedelta(milliseconds=i), nginx_line(ts, i)) for i in range(8)])
    result = fetch_window(logs, MissedEventQuery(site_id=1), BASE, BASE + dt.timedelta(seconds=20),
                          row_cap=5, sleep=no_sleep, poll_interval=0)
    assert not result.complete
    assert [(w.start_ms, w.end_ms) for w in result.truncated] == [(to_ms(ts), to_ms(ts) + 1000)]


class Wrapped:
    """A moto client with scripted answers for what moto cannot produce (statuses, throttling,
    statistics). ``script(method, kwargs, call_number)`` returns None (ask moto), a dict (answer)
    or raises."""

    def __init__(self, inner, script) -> None:
        self.inner, self.script, self.calls = inner, script, []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(**kwargs):
            self.calls.append((name, kwargs))
            answer = self.script(name, kwargs, sum(1 for c in self.calls if c[0] == name))
            return method(**kwargs) if answer is None else answer

        return call


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


def test_failed_query_is_retried_then_reported(logs):
    wanted, _ = seed(logs)
    first = to_ms(BASE) // 1000
    bad_queries = set()

    def script(name, kwargs, n):
        # moto always answers Complete: the first window's queries answer Failed here.
        if name == "start_query" and kwargs["startTime"] == first:
            bad_queries.add(n)
            return {"queryId": f"bad-{n}"}
        if name == "get_query_results" and kwargs["queryId"].startswith("bad-"):
            return {"status": "Failed", "results": []}
        return None

    client = Wrapped(logs, script)
    result = fetch_window(client, MissedEventQuery(site_id=1), BASE, BASE + dt.timedelta(minutes=21),
                          window_seconds=60, threads=2, max_attempts=3, sleep=no_sleep, poll_interval=0)
    assert len(bad_queries) == 3  # max_attempts, then reported: no endless loop
    assert [(w.start_ms, w.status, w.attempts) for w in result.failed] == [(to_ms(BASE), "Failed", 3)]
    assert not result.complete and result.attempt_statuses["Failed"] == 3
    lost = {m for m in wanted if BASE.isoformat()[:16] == json.loads(m)["date"][:16]}
    assert {e.message for e in result.events} == wanted - lost


def test_failed_then_complete_throttled_and_running_queries_end_complete(logs):
    wanted, _ = seed(logs)
    polls = {}

    def script(name, kwargs, n):
        if name == "start_query" and n <= 2:
            raise throttled("StartQuery")  # adaptive retries exhausted: surfaces, retried here
        if name == "get_query_results":
            seen = polls[kwargs["queryId"]] = polls.get(kwargs["queryId"], 0) + 1
            if seen == 1:
                return {"status": "Running", "results": []}
            if n == 2:
                return {"status": "Timeout", "results": []}  # Insights' own time-out: retried
        return None

    sleeps = []
    client = Wrapped(logs, script)
    result = fetch_window(client, MissedEventQuery(site_id=1), BASE, BASE + dt.timedelta(minutes=21),
                          window_seconds=300, threads=1, sleep=sleeps.append, poll_interval=0.5)
    assert {e.message for e in result.events} == wanted and result.complete
    assert result.attempt_statuses.get("Timeout") == 1
    assert 0.5 in sleeps and len(sleeps) >= 3


def test_query_running_past_the_timeout_is_stopped_and_reported(logs):
    def script(name, kwargs, n):
        if name == "get_query_results":
            return {"status": "Running", "results": []}
        return None

    client = Wrapped(logs, script)
    result = fetch_window(client, MissedEventQuery(site_id=1), BASE, BASE + dt.timedelta(minutes=5),
                          max_attempts=2, sleep=no_sleep, poll_interval=1.0, query_timeout=3.0)
    assert [w.status for w in result.windows] == ["Timeout"]
    assert sum(1 for c in client.calls if c[0] == "get_query_results") == 2 * 3
    assert sum(1 for c in client.calls if c[0] == "stop_query") == 2


def test_records_matched_above_the_rows_returned_splits_the_window(logs):
    wanted, _ = seed(logs)

    def script(name, kwargs, n):
        if name == "start_query" and kwargs["endTime"] - kwargs["startTime"] > 400:
            return {"queryId": "wide"}  # moto gives no statistics: say the wide query matched more
        if name == "get_query_results" and kwargs["queryId"] == "wide":
            return {"status": "Complete", "results": [], "statistics": {"recordsMatched": 12.0}}
        return None

    result = fetch_window(Wrapped(logs, script), MissedEventQuery(site_id=1), BASE,
                          BASE + dt.timedelta(minutes=20), window_seconds=1200, sleep=no_sleep, poll_interval=0)
    assert result.splits >= 1 and result.complete
    assert {e.message for e in result.events} == wanted


def test_missing_log_group_is_a_one_line_config_error(logs):
    with pytest.raises(ConfigError) as err:
        fetch_window(logs, MissedEventQuery(site_id=1, log_group="nope"), BASE, BASE + dt.timedelta(minutes=1),
                     sleep=no_sleep, poll_interval=0)
    assert "'nope' not found" in str(err.value) and "\n" not in str(err.value)


# -- filter_log_events ---------------------------------------------------------------------------
def test_filter_log_events_pages_and_matches_the_insights_ids(logs):
    wanted, _ = seed(logs)
    end = BASE + dt.timedelta(minutes=21)
    paged = fetch_window_filter_events(logs, MissedEventQuery(site_id=1), BASE, end, page_limit=7, sleep=no_sleep)
    assert paged.pages > 2 and paged.complete
    assert {e.message for e in paged.events} == wanted
    insights = fetch_window(logs, MissedEventQuery(site_id=1), BASE, end, sleep=no_sleep, poll_interval=0)
    assert [e.id for e in paged.events] == [e.id for e in insights.events]  # same event, same id


def test_filter_log_events_throttled_page_is_retried_and_a_failing_page_reported(logs):
    wanted, _ = seed(logs)

    def script(name, kwargs, n):
        if name == "filter_log_events" and n == 1:
            raise throttled("FilterLogEvents")
        if name == "filter_log_events" and n >= 4:
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "x"}}, "FilterLogEvents")
        return None

    result = fetch_window_filter_events(Wrapped(logs, script), MissedEventQuery(site_id=1), BASE,
                                        BASE + dt.timedelta(minutes=21), page_limit=5, sleep=no_sleep)
    assert result.pages == 2 and not result.complete
    assert result.failed[0].status == "Error" and result.failed[0].error == "InternalFailure"
    assert {e.message for e in result.events} < wanted


def test_filter_log_events_over_http_against_a_moto_server(aws_env):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = make_logs_client("eu-west-2", endpoint_url=f"http://127.0.0.1:{port}")
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
        client.create_log_stream(logGroupName=GROUP, logStreamName=OTHER_STREAM)
        wanted, _ = seed(client)
        result = fetch_window_filter_events(client, MissedEventQuery(site_id=1), BASE,
                                            BASE + dt.timedelta(minutes=21), page_limit=10, sleep=no_sleep)
        assert {e.message for e in result.events} == wanted and result.pages >= 4 and result.complete
    finally:
        server.stop()


# -- the store -----------------------------------------------------------------------------------
def _events(numbers) -> list[CloudEvent]:
    return [CloudEvent.make(to_ms(BASE) + 1000 * n, nginx_line(BASE + dt.timedelta(seconds=n), n), STREAM)
            for n in numbers]


def test_local_store_merges_without_losing_or_doubling(tmp_path):
    settings = load_settings(home=tmp_path / "home", environ={})
    store = EventStore.from_settings(settings)
    day = BASE.date()
    first = store.save("demo", day, _events(range(0, 10)))
    assert (first.added, first.total) == (10, 10)
    again = store.save("demo", day, list(reversed(_events(range(5, 15)))) + _events([3]))
    assert (again.added, again.total) == (5, 15)
    stored = store.load("demo", day)
    assert [e.id for e in stored] == [e.id for e in _events(range(15))]
    path = tmp_path / "home" / "cloudwatch" / "demo" / f"{day}.jsonl"
    assert again.location == str(path) and not list(path.parent.glob("*.tmp"))
    with pytest.raises(ConfigError):
        store.save("../x", day, [])


def test_s3_store_merges(aws_env, tmp_path):
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-2")
        s3.create_bucket(Bucket="replays", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        settings = load_settings(home=tmp_path / "home", environ={})
        config = CloudwatchConfig.from_env({"ANALYTICS_INGEST_CLOUDWATCH_S3": "s3://replays/cw"})
        store = EventStore.from_settings(settings, s3_url=config.events_s3, s3_client=s3)
        assert store.load("demo", "2024-05-01") == []
        store.save("demo", "2024-05-01", _events(range(4)))
        result = store.save("demo", "2024-05-01", _events(range(2, 6)))
        assert (result.added, result.total) == (2, 6)
        assert result.location == "s3://replays/cw/demo/2024-05-01.jsonl"
        body = s3.get_object(Bucket="replays", Key="cw/demo/2024-05-01.jsonl")["Body"].read().decode()
        assert len(body.splitlines()) == 6
        assert [e.id for e in store.load("demo", "2024-05-01")] == [e.id for e in _events(range(6))]


# -- windows -------------------------------------------------------------------------------------
def test_parse_window_accepts_iso_forms_and_sub_day_windows():
    start, end = parse_window("2020-09-28T12:13:14Z", "2020-09-28T14:14:15+01:00")
    assert start == dt.datetime(2020, 9, 28, 12, 13, 14, tzinfo=dt.timezone.utc)
    assert end == dt.datetime(2020, 9, 28, 13, 14, 15, tzinfo=dt.timezone.utc)
    start, end = parse_window("2020-09-28T12:00:00", "2020-09-28T12:00:00.500")  # naive = UTC
    assert (end - start).total_seconds() == 0.5 and start.tzinfo == dt.timezone.utc


@pytest.mark.parametrize("start,end,expected", [
    ("2020-09-28T12:00:00Z", "2020-09-28T11:00:00Z", "before it starts"),
    ("2020-09-28T12:00:00Z", "2020-09-28T12:00:00Z", "before it starts"),
    ("28/09/2020 12:00", "2020-09-28T13:00:00Z", "not an ISO 8601"),
    ("2020-09-28T12:00:00Z", "tomorrow", "not an ISO 8601"),
    ("2020-09-01T00:00:00Z", "2020-09-28T00:00:00Z", "more than the 168 h allowed"),
])
def test_parse_window_errors_are_one_line(start, end, expected):
    with pytest.raises(InputError) as err:
        parse_window(start, end, max_span=CloudwatchConfig.from_env({}).max_span)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_max_span_from_env_and_days_touched():
    with pytest.raises(InputError, match="more than the 2 h"):
        parse_window("2020-09-28T00:00:00Z", "2020-09-28T03:00:00Z",
                     max_span=CloudwatchConfig.from_env({"ANALYTICS_INGEST_REPLAY_MAX_SPAN_HOURS": "2"}).max_span)
    with pytest.raises(ConfigError, match="positive number"):
        parse_window("2020-09-28T00:00:00Z", "2020-09-28T03:00:00Z",
                     max_span=CloudwatchConfig.from_env({"ANALYTICS_INGEST_REPLAY_MAX_SPAN_HOURS": "lots"}).max_span)
    start, end = parse_window("2020-09-28T22:30:00Z", "2020-09-29T00:00:00Z")
    assert days_touched(start, end, "UTC") == [dt.date(2020, 9, 28)]
    assert days_touched(start, end, "Europe/Paris") == [dt.date(2020, 9, 29)]
    assert days_touched(start, end + dt.timedelta(seconds=1), "UTC") == [dt.date(2020, 9, 28), dt.date(2020, 9, 29)]
