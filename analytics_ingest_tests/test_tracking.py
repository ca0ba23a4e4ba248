"""Tracking requests: parameters as import_logs.py sends them, and deterministic pv_ids."""

import json
import math
import re

from analytics_ingest.hits import Hit
from analytics_ingest.matomo.pageview_ids import SPACE, STEP, PageviewIds
from analytics_ingest.matomo.tracking import RequestBuilder
from analytics_ingest.vocabulary import DOWNLOADS, PAGES


def test_step_is_coprime_so_ids_are_a_bijection():
    assert math.gcd(STEP, SPACE) == 1


def test_pv_ids_are_six_alphanumerics_unique_and_stable():
    ids = PageviewIds("1:abc")
    values = [ids(n) for n in range(1, 300_001)]
    assert all(re.fullmatch(r"[A-Za-z0-9]{6}", v) for v in values[:1000])
    assert len(set(values)) == len(values)
    assert PageviewIds("1:abc")(12345) == values[12344]
    assert PageviewIds("1:abd")(12345) != values[12344]


def _hit(**kw):
    base = dict(line_no=7, ip="2001:db8::1", cdt="2024-03-14 22:30:00", method="GET",
                path="/caf%C3%A9/é?q=1", status=200, length=512, referrer="https://ref.example/x",
                user_agent='Mozilla/5.0 "quoted"', user_id="", generation_ms=12)
    base.update(kw)
    return Hit(**base)


def test_page_request_parameters():
    builder = RequestBuilder(3, "https://example.org/", PageviewIds("x"))
    pv_id, text = builder.render(_hit(), PAGES, False)
    req = json.loads(text)
    assert req == {
        "idsite": 3, "rec": 1, "apiv": 1, "dp": 1,
        "url": "https://example.org/caf%C3%A9/é?q=1",
        "cip": "2001:db8::1", "cdt": "2024-03-14 22:30:00", "pv_id": pv_id,
        "ua": 'Mozilla/5.0 "quoted"', "urlref": "https://ref.example/x",
        "bw_bytes": 512, "pf_srv": 12,
    }


def test_download_bot_host_uid_and_error_name():
    builder = RequestBuilder(1, "https://example.org", PageviewIds("x"))
    _, text = builder.render(_hit(host="files.example.org", path="/a.pdf", user_id="alice"), DOWNLOADS, True)
    req = json.loads(text)
    assert req["url"] == "https://files.example.org/a.pdf"
    assert req["download"] == req["url"] and req["bots"] == 1 and req["uid"] == "alice"
    _, text = builder.render(_hit(status=404, referrer="", length=None, generation_ms=None), PAGES, False)
    req = json.loads(text)
    assert req["action_name"].startswith("404/URL = https%3A%2F%2Fexample.org")
    assert "bw_bytes" not in req and "urlref" not in req and "pf_srv" not in req


def test_long_paths_are_cut_like_import_logs():
    builder = RequestBuilder(1, "https://example.org", PageviewIds("x"))
    _, text = builder.render(_hit(path="/" + "a" * 5000), PAGES, False)
    assert len(json.loads(text)["url"]) == len("https://example.org") + 1024


def test_enable_bots_marks_every_request_and_zero_sizes_are_left_out():
    builder = RequestBuilder(1, "https://example.org", PageviewIds("x"), enable_bots=True)
    _, text = builder.render(_hit(length=0, generation_ms=0), PAGES, False)
    req = json.loads(text)
    assert req["bots"] == 1 and "bw_bytes" not in req and "pf_srv" not in req


def test_escaped_agents_and_referrers_are_reused_and_their_memory_is_bounded():
    """Issue #16: the JSON of an agent or referrer is kept per value; whatever the log, the kept
    values stay few and short, and what is rendered from the cache equals a fresh render."""
    builder = RequestBuilder(1, "https://example.org", PageviewIds("x"))
    fresh = lambda hit: RequestBuilder(1, "https://example.org", PageviewIds("x")).render(hit, PAGES, False)  # noqa: E731
    for n in range(10_000):
        hit = _hit(line_no=n + 1, user_agent=f"Agent/{n} \u00e9\"x\"", referrer=f"https://r.example/{n % 7}")
        assert builder.render(hit, PAGES, False) == fresh(hit)
    assert len(builder._agent_json) <= 4096 and len(builder._referrer_json) == 7
    huge = _hit(user_agent="A" * 3000, referrer="https://r.example/" + "p" * 2000)
    _, text = builder.render(huge, PAGES, False)
    assert json.loads(text)["ua"] == "A" * 3000 and len(json.loads(text)["urlref"]) == 1024
    assert "A" * 3000 not in builder._agent_json  # too long to keep
    assert builder.render(huge, PAGES, False) == fresh(huge)


def test_the_sent_url_is_url_of():
    """``render_fields`` builds the URL inline (it runs per hit); the pretable rebuilds it with
    ``url_of`` (a builder without pv_ids) and must get the URL that was sent, byte for byte."""
    sender = RequestBuilder(1, "https://example.org:8443/", PageviewIds("x"))
    reader = RequestBuilder(0, "https://example.org:8443/", pv_ids=None)
    paths = ["/", "/caf%C3%A9/é?q=1", "/a.pdf", "x" * 3000, "/" + "y" * 1023 + "z"]
    for host in ("", "files.example.org", "Shop.Example.org"):
        for path in paths:
            for category in (PAGES, DOWNLOADS):
                _, text = sender.render(_hit(host=host, path=path), category, False)
                req = json.loads(text)
                assert req["url"] == reader.url_of(host, path), (host, path)
                if category == DOWNLOADS:
                    assert req["download"] == req["url"]
