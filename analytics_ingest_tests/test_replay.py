"""Replaying CloudWatch events into a fake Matomo: journal, ``matomo_replay`` parser, overlay, exactly once."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import pytest

from analytics_ingest.cloudwatch import CloudEvent, append_new_events, events_by_day, journal_path, replay_day
from analytics_ingest.cloudwatch.window import to_ms
from analytics_ingest.engine import open_ledger
from analytics_ingest.errors import InputError
from analytics_ingest.hits import Hit
from analytics_ingest.logs import make_parser
from analytics_ingest.logs.replay import NOT_TRACKER
from analytics_ingest.matomo.pageview_ids import PageviewIds
from analytics_ingest.matomo.retry import RetryPolicy
from analytics_ingest.matomo.tracking import RequestBuilder
from analytics_ingest.vocabulary import FILE_LOADED, PAGES

FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, maintenance_delay=0.05, read_timeout=1.0,
                   settle_wait=0.2, settle_interval=0.05)
DAY = dt.date(2024, 5, 1)
SITE = SimpleNamespace(id=1, key="verify", lanes=2, batch_size=3, timezone="UTC")
BASE = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # 08:00 UTC


def tracker_event(n: int, *, idsite: int = 1, status: str = "502", extra: str = "",
                  path: str | None = None) -> CloudEvent:
    ts = BASE + dt.timedelta(minutes=n, seconds=n % 13)
    query = (f"idsite={idsite}&rec=1&r={n:06d}&_id=0123456789abc{n:03d}&url=https%3A%2F%2Fwww.example.gov.uk%2Fp%2F{n}"
             f"&action_name=Caf%C3%A9%20{n}&res=1920x1080&dimension1=v{n}{extra}")
    line = json.dumps({
        "msec": f"{ts.timestamp():.3f}", "ip": f"198.51.100.{n + 1}", "host": "analytics.example",
        "path": path or f"/matomo.php?{query}", "status": status, "referrer": f"https://www.example.gov.uk/p/{n}",
        "user_agent": f"Mozilla/5.0 test {n}", "length": 43, "generation_time_milli": 0.01,
        "date": ts.isoformat(), "http_x_forwarded_for": f"203.0.113.{n + 1}, 10.0.0.1",
    })
    return CloudEvent.make(to_ms(ts), line, "matomo-nginx/x")


def original_params(event: CloudEvent) -> dict:
    path = json.loads(event.message)["path"]
    return dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))


def run(settings, events):
    ledger = open_ledger(settings)
    try:
        return replay_day(settings, ledger, SITE, DAY, events, policy=FAST)
    finally:
        ledger.close()


def test_replay_sends_every_event_once_with_original_params_through_reruns_and_overlaps(settings, fake):
    events = [tracker_event(n, status=("502", "503", "404")[n % 3]) for n in range(12)]
    events[4] = tracker_event(4, extra="&token_auth=leaked0token&uid=user-4")  # token never forwarded
    first = run(settings, events[:6])
    assert (first.appended, first.delivered, first.already_present, first.invalid) == (6, 6, 0, 0)
    assert first.status == FILE_LOADED
    posts = fake.bulk_posts
    rerun = run(settings, events[:6])
    assert (rerun.appended, rerun.delivered, rerun.already_present) == (0, 0, 6)
    assert fake.bulk_posts == posts  # "already imported": nothing sent
    overlap = run(settings, events[3:12])  # an overlapping window: 3 old, 6 new
    assert (overlap.appended, overlap.delivered, overlap.already_present) == (6, 6, 3)

    assert fake.duplicates() == {}
    hits = {h["_id"]: h for h in fake.hits(1)}
    assert len(fake.hits(1)) == 12 == len(hits) and fake.hits(2) == []
    for event in events:
        sent = hits[original_params(event)["_id"]]
        log = json.loads(event.message)
        for key, value in original_params(event).items():
            if key != "token_auth":
                assert sent[key] == value, key
        assert "token_auth" not in sent
        assert sent["cip"] == log["ip"] and sent["ua"] == log["user_agent"]
        utc = dt.datetime.fromisoformat(log["date"]).astimezone(dt.timezone.utc)
        assert sent["cdt"] == utc.strftime("%Y-%m-%d %H:%M:%S")
        assert sent["idsite"] == "1" and sent["rec"] == "1" and sent["apiv"] == "1" and len(sent["pv_id"]) == 6
    assert hits[original_params(events[4])["_id"]]["uid"] == "user-4"
    journal = journal_path(settings.home, "verify", DAY)
    assert len(journal.read_text().splitlines()) == 12
    assert "leaked0token" not in journal.read_text() and "token_auth=***" in journal.read_text()


def test_other_sites_and_non_tracker_lines_are_invalid_not_sent(settings, fake):
    events = [tracker_event(1), tracker_event(2, idsite=2), tracker_event(3, path="/index.php?idsite=1&rec=1"),
              tracker_event(4, path="/matomo.php?rec=1"), CloudEvent.make(to_ms(BASE), "garbage"),
              CloudEvent.make(to_ms(BASE), '{"a": 1}\n{"b": 2}')]
    result = run(settings, events)
    assert result.delivered == 1 and result.appended == 4
    assert result.invalid_reasons == {"other_site": 1, "multiline": 1, NOT_TRACKER: 2, "unparseable": 1}
    assert result.invalid == 5
    assert [h["_id"] for h in fake.hits()] == [original_params(events[0])["_id"]]


def test_append_is_append_only_and_heals_a_torn_last_line(tmp_path):
    path = tmp_path / "j.replay.jsonl"
    events = [tracker_event(n) for n in range(4)]
    assert append_new_events(path, events[:2]).appended == 2
    before = path.read_bytes()
    with open(path, "ab") as handle:  # a crash in the middle of an append
        handle.write(events[2].message.encode()[:30])
    result = append_new_events(path, events)
    assert (result.appended, result.already_present) == (2, 2)
    data = path.read_bytes()
    assert data.startswith(before)  # earlier lines never rewritten
    lines = data.decode().splitlines()
    assert lines[2] == events[2].message[:30] and lines[3:] == [events[2].message, events[3].message]
    assert append_new_events(path, events).appended == 0


def test_events_by_day_uses_the_site_timezone():
    late = CloudEvent.make(to_ms(dt.datetime(2024, 5, 1, 22, 30, tzinfo=dt.timezone.utc)), "x")
    assert set(events_by_day([late], "UTC")) == {dt.date(2024, 5, 1)}
    assert set(events_by_day([late], "Europe/Paris")) == {dt.date(2024, 5, 2)}


# -- parser and request builder, without Matomo ---------------------------------------------------
def test_replay_parser_keeps_original_params_and_status_and_counts_every_hit_as_a_page():
    event = tracker_event(7, status="503", extra="&token_auth=secret")
    parser = make_parser("matomo_replay", [])
    hit = parser.parse(event.message, 1)
    assert hit.status == 503 and hit.ip == "198.51.100.8" and hit.cdt == "2024-05-01 08:07:07"
    assert hit.extra["tracking_params"]["action_name"] == "Café 7"
    assert "token_auth" not in hit.extra["tracking_params"]
    holder = [None]
    assert parser.stepper(None, holder)(event.message, 1) == PAGES and holder[0] == hit
    assert make_parser("matomo_replay_xff", []).parse(event.message, 1).ip == "203.0.113.8"
    assert parser.parse('{"ip": "1.2.3.4", "path": "/", "date": "2024-05-01T00:00:00Z"}', 2) == NOT_TRACKER


def test_request_overlay_original_params_win_except_engine_ones():
    builder = RequestBuilder(1, "https://example.org", PageviewIds("1:x"))
    params = {"idsite": "1", "rec": "1", "url": "https://a.example/", "ua": "Custom UA", "cip": "6.6.6.6",
              "cdt": "2000-01-01 00:00:00", "pv_id": "AAAAAA", "e_c": "cat"}
    hit = Hit(5, "198.51.100.1", "2024-05-01 08:00:00", "GET", "/matomo.php?x", 502, user_agent="Log UA",
              extra={"tracking_params": params})
    pv_id, text = builder.render(hit, PAGES, False)
    sent = json.loads(text)
    assert sent == {"idsite": 1, "rec": "1", "apiv": 1, "cip": "198.51.100.1", "cdt": "2024-05-01 08:00:00",
                    "ua": "Custom UA", "url": "https://a.example/", "e_c": "cat", "pv_id": pv_id}
    with pytest.raises(InputError, match="idsite='2', not site 1"):
        builder.render(Hit(6, "1.1.1.1", "2024-05-01 08:00:00", "GET", "/", 502,
                           extra={"tracking_params": {"idsite": "2"}}), PAGES, False)
