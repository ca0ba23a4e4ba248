"""Tests of the fake Matomo itself (the other suites trust it)."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import quote

import pytest
import requests

from analytics_ingest_tests import gen_logs as gen
from analytics_ingest_tests import null_matomo as null
from analytics_ingest_tests.fake_matomo import FakeMatomo

TOKEN = "t0ken"
SITES = {
    1: {"name": "Demo", "main_url": "https://example.org", "timezone": "UTC"},
    2: {"name": "Other", "main_url": "https://www.other.example", "timezone": "UTC"},
}


def hit(pv: str, cdt: str = "2024-03-14 10:00:00", ip: str = "192.0.2.1", ua: str = "UA-1",
        idsite: int = 1, **extra) -> dict:
    req = {"idsite": idsite, "rec": 1, "apiv": 1, "url": f"https://example.org/p/{pv}", "cip": ip,
           "cdt": cdt, "pv_id": pv, "ua": ua}
    req.update(extra)
    return req


@pytest.fixture
def fake():
    with FakeMatomo(token=TOKEN, sites=SITES) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


def post(http, fake, reqs, token=TOKEN, path="/matomo.php?queuedtracking=0", timeout=5):
    body = {"requests": reqs}
    if token is not None:
        body["token_auth"] = token
    return http.post(fake.url + path, json=body, timeout=timeout)


def api(http, fake, method, token=TOKEN, verb="GET", **params):
    form = {"module": "API", "format": "json", "method": method, **params}
    if token is not None:
        form["token_auth"] = token
    if verb == "GET":
        resp = http.get(fake.url + "/index.php", params=form, timeout=5)
    else:
        resp = http.post(fake.url + "/", data=form, timeout=5)
    assert resp.status_code == 200
    return resp.json()


# --- bulk tracking ------------------------------------------------------------------------------

def test_bulk_success_with_invalid_indices_and_query_string_requests(fake, http):
    reqs = [
        hit("a"),
        {"idsite": 99, "rec": 1, "url": "https://example.org/x"},  # unknown site
        "?idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2Fq&cip=192.0.2.9&cdt=2024-03-14+11:00:00&pv_id=q",
        {"idsite": 1, "url": "https://example.org/norec"},  # no rec
        {"idsite": 1, "rec": 1, "cip": "192.0.2.1"},  # no url/download/link
        hit("d", download="https://example.org/f.pdf"),
        hit("bad", cdt="not a date"),
    ]
    resp = post(http, fake, reqs)
    assert resp.status_code == 200
    assert resp.json() == {"status": "success", "tracked": 3, "invalid": 4, "invalid_indices": [1, 3, 4, 6]}
    stored = fake.hits()
    assert [h["pv_id"] for h in stored] == ["a", "q", "d"]
    assert stored[0]["rec"] == "1" and stored[0]["idsite"] == "1"  # all params as strings
    assert stored[1]["url"] == "https://example.org/q" and stored[1]["cdt"] == "2024-03-14 11:00:00"
    assert [h["_order"] for h in stored] == [0, 1, 2] and {h["_post"] for h in stored} == {1}
    assert fake.pv_ids() == ["a", "q", "d"] and fake.pv_ids(idsite=2) == []
    assert fake.bulk_posts == 1
    assert fake.bulk_log[0]["query"] == {"queuedtracking": "0"}


def test_piwik_php_and_string_without_query_is_dropped(fake, http):
    resp = post(http, fake, ["idsite=1&rec=1", hit("a"), {"idsite": 5}], path="/piwik.php")
    # Matomo drops a string request with no '?query' entirely: positions shift down.
    assert resp.json() == {"status": "success", "tracked": 1, "invalid": 1, "invalid_indices": [1]}


def test_non_superuser_token_gets_no_invalid_indices():
    with FakeMatomo(token=TOKEN, superuser=False) as fake:
        body = {"requests": [{"idsite": 7}], "token_auth": TOKEN}
        resp = requests.post(fake.url + "/matomo.php", json=body, timeout=5)
        assert resp.json() == {"status": "success", "tracked": 0, "invalid": 1}


@pytest.mark.parametrize(
    "body", [b"not json", b'{"token_auth": "t0ken"}', b'{"requests": "x", "token_auth": "t0ken"}', b""]
)
def test_bad_bodies_are_400_and_store_nothing(fake, http, body):
    resp = http.post(fake.url + "/matomo.php", data=body, timeout=5)
    assert resp.status_code == 400
    data = resp.json()
    assert data["status"] == "error" and data["tracked"] == 0 and data["invalid"] == 0
    assert fake.hits() == [] and fake.bulk_posts == 1


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_wrong_or_missing_token_refuses_the_whole_post(fake, http, token):
    resp = post(http, fake, [hit("a"), hit("b")], token=token)
    assert resp.status_code == 400
    assert resp.json()["status"] == "error" and "token_auth" in resp.json()["message"]
    assert fake.hits() == []


def test_posts_commit_atomically_under_concurrency(fake):
    def worker(k: int) -> None:
        with requests.Session() as s:
            for j in range(5):
                reqs = [hit(f"{k}-{j}-{i}", ip=f"192.0.2.{k}") for i in range(20)]
                assert post(s, fake, reqs).json()["tracked"] == 20

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = fake.hits()
    assert len(stored) == 8 * 5 * 20 and fake.bulk_posts == 40
    by_post: dict[int, list[int]] = {}
    for h in stored:
        by_post.setdefault(h["_post"], []).append(h["_order"])
    for orders in by_post.values():  # each POST's hits are contiguous: one transaction
        assert orders == list(range(orders[0], orders[0] + 20))
    assert fake.duplicates() == {}


def test_keep_alive_reuses_one_connection(fake, http):
    for i in range(5):
        assert post(http, fake, [hit(str(i))]).status_code == 200
    api(http, fake, "API.getMatomoVersion", token=None)
    assert fake.connections == 1


def test_duplicates_pv_ids_and_reset(fake, http):
    post(http, fake, [hit("a"), hit("b")])
    post(http, fake, [hit("a"), hit("c"), hit("b", idsite=2)])
    assert fake.duplicates() == {"a": 2}
    fake.reset()
    assert fake.hits() == [] and fake.bulk_posts == 0 and fake.bulk_log == []


# --- faults -------------------------------------------------------------------------------------

def test_500_before_commit_on_a_given_post(fake, http):
    fake.inject("500_before_commit", on_post=2)
    assert post(http, fake, [hit("a")]).status_code == 200
    resp = post(http, fake, [hit("b")])
    assert resp.status_code == 500
    assert resp.json() == {"status": "error", "tracked": 0, "invalid": 0, "invalid_indices": []}
    assert post(http, fake, [hit("b")]).status_code == 200
    assert fake.pv_ids() == ["a", "b"] and fake.bulk_posts == 3
    assert [e["status"] for e in fake.bulk_log] == [200, 500, 200]


def test_500_before_commit_html_body(fake, http):
    fake.inject("500_before_commit", body="html")
    resp = post(http, fake, [hit("a")])
    assert resp.status_code == 500 and resp.headers["Content-Type"].startswith("text/html")
    assert fake.hits() == []


def test_500_after_commit_stores_and_a_blind_retry_duplicates(fake, http):
    fake.inject("500_after_commit")
    resp = post(http, fake, [hit("a"), hit("b")])
    assert resp.status_code == 500 and resp.json()["tracked"] == 2
    assert fake.pv_ids() == ["a", "b"]
    assert post(http, fake, [hit("a"), hit("b")]).status_code == 200
    assert fake.duplicates() == {"a": 2, "b": 2}


def test_timeout_before_commit(fake, http):
    fake.inject("timeout_before_commit", seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(http, fake, [hit("a")], timeout=0.2)
    time.sleep(0.7)
    assert fake.hits() == []
    assert post(http, fake, [hit("a")]).status_code == 200  # next POST is fine


def test_timeout_before_commit_then_close_without_answer(fake, http):
    fake.inject("timeout_before_commit", seconds=0.2)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(http, fake, [hit("a")], timeout=3)
    assert fake.hits() == []


def test_timeout_after_commit(fake, http):
    fake.inject("timeout_after_commit", seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(http, fake, [hit("a")], timeout=0.2)
    assert fake.pv_ids() == ["a"]


def test_reset_raises_connection_error_and_stores_nothing(fake, http):
    fake.inject("reset")
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        post(http, fake, [hit(str(i)) for i in range(200)])
    assert "aborted" in repr(info.value).lower() or "reset" in repr(info.value).lower()
    assert fake.hits() == [] and fake.bulk_log[0]["status"] == "reset"
    assert post(http, fake, [hit("a")]).status_code == 200
    # on the wire it is a real RST, not a clean close
    fake.inject("reset")
    body = json.dumps({"requests": [hit("b")], "token_auth": TOKEN}).encode()
    with socket.create_connection((fake.host, fake.port), timeout=5) as raw:
        raw.sendall(b"POST /matomo.php HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        with pytest.raises(ConnectionResetError):
            raw.recv(100)
    assert fake.pv_ids() == ["a"]


def test_html_200_and_gif(fake, http):
    fake.inject("html_200")
    fake.inject("html_200", body="gif")
    resp = post(http, fake, [hit("a")])
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        resp.json()
    resp = post(http, fake, [hit("a")])
    assert resp.headers["Content-Type"] == "image/gif" and resp.content.startswith(b"GIF89a")
    assert fake.hits() == []


def test_maintenance_503_times_and_for_seconds(fake, http):
    fake.inject("maintenance_503", times=2, retry_after=7)
    for _ in range(2):
        resp = post(http, fake, [hit("a")])
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
    assert post(http, fake, [hit("a")]).status_code == 200
    fake.inject("maintenance_503", for_seconds=0.4)
    assert post(http, fake, [hit("b")]).status_code == 503
    assert post(http, fake, [hit("b")]).status_code == 503
    time.sleep(0.45)
    assert post(http, fake, [hit("b")]).status_code == 200
    assert fake.pv_ids() == ["a", "b"]


def test_skip_some_is_silent(fake, http):
    fake.inject("skip_some", positions=[1, 3])
    resp = post(http, fake, [hit("a"), hit("b"), hit("c"), hit("d")])
    assert resp.json() == {"status": "success", "tracked": 2, "invalid": 0, "invalid_indices": []}
    assert fake.pv_ids() == ["a", "c"]


def test_slow_then_normal(fake, http):
    fake.inject("slow", seconds=0.3)
    started = time.monotonic()
    assert post(http, fake, [hit("a")]).json()["tracked"] == 1
    assert time.monotonic() - started >= 0.3


def test_client_hanging_up_mid_response_is_not_an_error(fake, http):
    fake.inject("slow", seconds=0.4)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(http, fake, [hit("a")], timeout=0.1)
    time.sleep(0.5)  # the server answers into a closed socket
    assert fake.pv_ids() == ["a"]  # slow = committed late, after the client gave up
    assert post(http, fake, [hit("b")]).status_code == 200
    # the fixture asserts fake.errors == []


def test_inject_fn_and_fault_bookkeeping(fake, http):
    seen = []

    def fn(n, reqs):
        seen.append((n, len(reqs) if reqs is not None else None))
        if reqs and any(r.get("pv_id") == "boom" for r in reqs):
            return ("500_after_commit", {"tracked": 0})
        return None

    fake.inject_fn(fn)
    assert post(http, fake, [hit("a")]).status_code == 200
    resp = post(http, fake, [hit("boom")])
    assert resp.status_code == 500 and resp.json()["tracked"] == 0  # lies, as in the field
    assert seen == [(1, 1), (2, 1)] and fake.pv_ids() == ["a", "boom"]
    fault = fake.inject("500_before_commit", on_post=3, times=2)
    for _ in range(3):
        post(http, fake, [hit("c")])
    assert fault.applied == 2 and fake.pv_ids() == ["a", "boom", "c"]
    with pytest.raises(ValueError):
        fake.inject("explode")
    with pytest.raises(TypeError):
        fake.inject("slow", second=1)


def test_handler_exception_is_answered_500_and_recorded():
    with FakeMatomo(token=TOKEN) as fake:
        fake.inject_fn(lambda n, reqs: 1 / 0)
        resp = requests.post(fake.url + "/matomo.php", json={"requests": [hit("a")], "token_auth": TOKEN})
        assert resp.status_code == 500
        assert len(fake.errors) == 1 and "ZeroDivisionError" in fake.errors[0]


def test_close_is_prompt_even_while_a_fault_sleeps():
    fake = FakeMatomo(token=TOKEN)
    fake.inject("timeout_before_commit", seconds=60)
    t = threading.Thread(target=lambda: pytest.raises(
        requests.exceptions.RequestException, requests.post, fake.url + "/matomo.php",
        json={"requests": [hit("a")], "token_auth": TOKEN}, timeout=10), daemon=True)
    t.start()
    time.sleep(0.2)
    started = time.monotonic()
    fake.close()
    assert time.monotonic() - started < 2
    t.join(5)
    assert not t.is_alive()


def test_api_faults(fake, http):
    fake.inject("500_before_commit", target="api")
    version = {"module": "API", "method": "API.getMatomoVersion", "format": "json"}
    resp = http.get(fake.url + "/index.php", params=version)
    assert resp.status_code == 500
    assert api(http, fake, "API.getMatomoVersion") == {"value": "4.12.3"}
    with pytest.raises(ValueError):
        fake.inject("skip_some", target="api")


# --- Reporting API ------------------------------------------------------------------------------

def test_version_site_and_errors(fake, http, capfd):
    assert api(http, fake, "API.getMatomoVersion", token=None) == {"value": "4.12.3"}
    site = api(http, fake, "SitesManager.getSiteFromId", idSite=1)
    assert (site["idsite"], site["name"], site["timezone"]) == ("1", "Demo", "UTC")
    assert site["main_url"] == "https://example.org"
    assert api(http, fake, "SitesManager.getSiteFromId", verb="POST", idSite=2)["name"] == "Other"
    assert api(http, fake, "SitesManager.getSiteFromId", idSite=42)["result"] == "error"
    denied = api(http, fake, "SitesManager.getSiteFromId", token="nope", idSite=1)
    assert denied == {
        "result": "error",
        "message": "You can't access this resource as it requires 'view' access for the website id = 1.",
    }
    assert api(http, fake, "Nope.nothing")["result"] == "error"
    assert api(http, fake, "SitesManager.getSitesIdFromSiteUrl", url="http://other.example/") == [{"idsite": "2"}]
    assert set(api(http, fake, "SitesManager.getAllSites")) == {"1", "2"}
    xml = http.get(fake.url + "/index.php", params={"module": "API", "method": "API.getMatomoVersion"})
    assert xml.headers["Content-Type"].startswith("text/xml")
    # the token never leaves the test: masked in the log, never printed
    assert all(p.get("token_auth") in (None, "***") for _m, _p, p in fake.requests_log)
    logged = {"module": "API", "format": "json", "method": "SitesManager.getSiteFromId", "idSite": "2",
              "token_auth": "***"}
    assert ("POST", "/", logged) in fake.requests_log
    out, err = capfd.readouterr()
    assert TOKEN not in out and TOKEN not in err


def test_live_visits_segments_and_paging(fake, http):
    v6 = "2001:db8::1"
    reqs = [
        hit("a1", "2024-03-14 10:00:00", ip="192.0.2.1"),
        hit("a2", "2024-03-14 10:20:00", ip="192.0.2.1", download="https://example.org/f.pdf"),
        hit("a3", "2024-03-14 11:00:00", ip="192.0.2.1"),  # > 30 min later: new visit
        hit("b1", "2024-03-14 10:05:00", ip="2001:0db8:0:0::1"),  # stored normalised
        hit("c1", "2024-03-14 10:06:00", ip="192.0.2.1", ua="Other UA"),  # other UA: other visit
        hit("d1", "2024-03-13 23:50:00", ip="192.0.2.7"),
        hit("d2", "2024-03-14 00:10:00", ip="192.0.2.7"),  # midnight: new visit
        hit("z1", "2024-03-14 12:00:00", ip="192.0.2.1", idsite=2),
    ]
    post(http, fake, reqs)

    def live(**p):
        p.setdefault("filter_limit", -1)
        return api(http, fake, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-14", **p)

    visits = live()
    pvs = [[a["idpageview"] for a in v["actionDetails"]] for v in visits]
    assert pvs == [["a3"], ["a1", "a2"], ["c1"], ["b1"], ["d2"]]
    first = visits[1]  # ordered by last action, newest first
    assert first["visitIp"] == "192.0.2.1" and first["actionDetails"][1]["type"] == "download"
    assert first["actionDetails"][0]["timestamp"] == 1710410400
    assert first["actionDetails"][0]["type"] == "action"
    assert "serverTimePretty" in first["actionDetails"][0]
    seg = f"visitIp=={quote(v6)},visitIp==192.0.2.7"
    assert [v["visitIp"] for v in live(segment=seg)] == [v6, "192.0.2.7"]
    assert [v["visitIp"] for v in live(segment=quote(seg, safe=""))] == [v6, "192.0.2.7"]  # double-encoded
    assert len(live(filter_limit=2)) == 2
    page2 = live(filter_limit=2, filter_offset=1)
    assert [v["actionDetails"][0]["idpageview"] for v in page2] == ["a1", "c1"]
    day13 = api(http, fake, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-13")
    assert [v["actionDetails"][0]["idpageview"] for v in day13] == ["d1"]
    both = api(http, fake, "Live.getLastVisitsDetails", idSite=1, period="range",
               date="2024-03-13,2024-03-14", filter_limit=-1)
    assert len(both) == 6
    assert live(segment="browserCode==FF")["result"] == "error"
    denied = api(http, fake, "Live.getLastVisitsDetails", token="bad", idSite=1, period="day", date="2024-03-14")
    assert denied["result"] == "error"


def test_summaries_and_invalidation(fake, http):
    post(http, fake, [
        hit("a1", "2024-03-14 10:00:00"),
        hit("a2", "2024-03-14 10:01:00", download="https://example.org/f.pdf"),
        hit("b1", "2024-03-14 10:05:00", ip="192.0.2.2"),
        hit("c1", "2024-03-15 10:05:00", ip="192.0.2.2"),
    ])
    summary = api(http, fake, "VisitsSummary.get", idSite=1, period="day", date="2024-03-14")
    assert (summary["nb_visits"], summary["nb_actions"]) == (2, 3)
    actions = api(http, fake, "Actions.get", idSite=1, period="day", date="2024-03-14")
    assert (actions["nb_pageviews"], actions["nb_downloads"]) == (2, 1)
    multi = api(http, fake, "VisitsSummary.get", idSite=1, period="day", date="2024-03-14,2024-03-16")
    assert {d: r["nb_visits"] for d, r in multi.items()} == {"2024-03-14": 2, "2024-03-15": 1, "2024-03-16": 0}
    result = api(http, fake, "CoreAdminHome.invalidateArchivedReports", verb="POST", idSites="1",
                 dates="2024-03-14,2024-03-15", period="day")
    assert result["result"] == "success"
    assert fake.invalidations == [{"idSites": [1], "dates": ["2024-03-14", "2024-03-15"], "period": "day",
                                   "segment": None, "cascadeDown": False}]


# --- IP anonymisation, segments, Live switched off ------------------------------------------------

@pytest.mark.parametrize("ip, masked", [
    ("198.51.100.77", ["198.51.100.77", "198.51.100.0", "198.51.0.0", "198.0.0.0", "0.0.0.0"]),
    ("2001:db8:1234:5678:9abc:def0:1:7",
     ["2001:db8:1234:5678:9abc:def0:1:7", "2001:db8:1234:5678::", "2001:db8:1234::", "2001:db8::", "::"]),
    ("::ffff:198.51.100.77", ["::ffff:c633:644d", "::ffff:c633:6400", "::ffff:c633:0", "::ffff:c600:0",
                              "::ffff:0:0"]),
])
def test_anonymize_ip_follows_matomos_network_library(ip, masked):
    from analytics_ingest_tests.fake_matomo import anonymize_ip

    assert [anonymize_ip(ip, n) for n in range(5)] == masked


@pytest.mark.parametrize("masked_bytes, shown", [(0, "198.51.100.77"), (1, "198.51.100.0"), (2, "198.51.0.0"),
                                                  (3, "198.0.0.0")])
def test_anonymised_visit_ip_in_live_and_segments(http, masked_bytes, shown):
    with FakeMatomo(token=TOKEN, sites=SITES, anonymize_ip_bytes=masked_bytes) as fake:
        post(http, fake, [hit("a1", "2024-03-14 10:00:00", ip="198.51.100.77"),
                          hit("a2", "2024-03-14 10:01:00", ip="198.51.100.78"),  # same mask, other visitor
                          hit("b1", "2024-03-14 10:02:00", ip="2001:db8:1234:5678::9")])

        def live(**p):
            return api(http, fake, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-14",
                       filter_limit=-1, **p)

        visits = live()
        v6 = ["2001:db8:1234:5678::9", "2001:db8:1234:5678::", "2001:db8:1234::", "2001:db8::"][masked_bytes]
        assert {v["actionDetails"][0]["idpageview"]: v["visitIp"] for v in visits} == {
            "a1": shown, "a2": shown if masked_bytes else "198.51.100.78", "b1": v6}
        assert len(visits) == 3  # recognition uses the full IP: two visitors, even when masked alike
        by_full = live(segment="visitIp==198.51.100.77")
        assert [v["actionDetails"][0]["idpageview"] for v in by_full] == (["a1"] if masked_bytes == 0 else [])
        assert {v["actionDetails"][0]["idpageview"] for v in live(segment=f"visitIp=={shown}")} == (
            {"a1"} if masked_bytes == 0 else {"a1", "a2"})
        assert fake.hits()[0]["cip"] == "198.51.100.77"  # the request is kept as sent
        assert fake.errors == []


def test_live_time_segments_precedence_and_min_timestamp(fake, http):
    post(http, fake, [
        hit("a1", "2024-03-14 10:59:00", ip="192.0.2.1"), hit("a2", "2024-03-14 11:10:00", ip="192.0.2.1"),
        hit("b1", "2024-03-14 11:00:30", ip="192.0.2.2"),
        hit("c1", "2024-03-14 10:00:00", ip="192.0.2.3"),
        hit("d1", "2024-03-14 12:59:59", ip="192.0.2.4", uid="zoé"),
        hit("e1", "2024-03-15 10:59:10", ip="192.0.2.5"),
    ])

    def ids(**p):
        p.setdefault("filter_limit", -1)
        visits = api(http, fake, "Live.getLastVisitsDetails", idSite=1, period="range",
                     date="2024-03-14,2024-03-15", **p)
        return sorted(v["actionDetails"][0]["idpageview"] for v in visits)

    assert ids(segment="actionServerHour==10;actionServerMinute==59") == ["a1", "e1"]
    # ',' binds tighter than ';': hour in {10, 11} AND minute in {59, 0}; 10:00 and 11:00 too
    assert ids(segment="actionServerHour==10,actionServerHour==11;actionServerMinute==59,actionServerMinute==0") \
        == ["a1", "b1", "c1", "e1"]
    # both conditions on one action: a1's visit has 10:59 and 11:10, but no action at 11:59 or 10:10
    assert ids(segment="actionServerHour==11;actionServerMinute==59") == []
    assert ids(segment="actionServerHour==10;actionServerMinute==59,userId==zoé") == ["a1", "e1"]
    assert ids(segment="userId==zo%C3%A9;actionServerHour==12") == ["d1"]
    assert ids(segment="actionServerHour!=10") == ["a1", "b1", "d1"]  # a1's visit has an 11:10 action
    assert ids(segment=quote("actionServerHour==10;actionServerMinute==0", safe="")) == ["c1"]
    # minTimestamp: visit_last_action_time > minTimestamp
    assert ids(minTimestamp=1710413999) == ["a1", "b1", "d1", "e1"]  # 2024-03-14 10:59:59
    assert ids(minTimestamp=1710418200) == ["d1", "e1"]  # 11:10:00 itself is not later
    assert ids(minTimestamp="soon") == ["a1", "b1", "c1", "d1", "e1"]
    # filter_limit: 10 by default (plugins/Live/API.php), below 1 means all
    post(http, fake, [hit(f"m{i}", f"2024-03-14 09:{i:02d}:00", ip=f"198.51.100.{i}") for i in range(12)])
    assert len(ids(filter_limit=None)) == 10 and len(ids(filter_limit=0)) == 17
    for bad in ("browserCode==FF", "actionServerHour>=10", "actionServerHour==10;", "nonsense"):
        assert api(http, fake, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-14",
                   segment=bad)["result"] == "error"


@pytest.mark.parametrize("token", [TOKEN, "wrong"])
def test_live_deactivated_answers_matomos_plugin_error(http, token):
    with FakeMatomo(token=TOKEN, sites=SITES, live_enabled=False) as fake:
        post(http, fake, [hit("a")])
        for method in ("Live.getLastVisitsDetails", "Live.getCounters"):
            assert api(http, fake, method, token=token, idSite=1, period="day", date="2024-03-14") == {
                "result": "error",
                "message": "The plugin Live is not enabled. You can activate the plugin on Settings &gt; Plugins "
                           "page in Matomo.",
            }
        assert api(http, fake, "SitesManager.getSiteFromId", idSite=1)["idsite"] == "1"
        fake.live_enabled = True
        assert len(api(http, fake, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-14")) == 1


@pytest.mark.parametrize("setting, message", [
    ("site", "Visits log is deactivated in website settings. A user with at least admin access can enable this "
             "feature in the settings for this website (idSite=1)."),
    ("global", "Visits log is deactivated globally. A user with super user access can enable this feature in "
               "the general settings."),
])
def test_visits_log_deactivated(http, setting, message):
    with FakeMatomo(token=TOKEN, sites=SITES, visits_log=setting) as fake:
        answer = api(http, fake, "Live.getLastVisitsDetails", idSite=1, period="day", date="2024-03-14")
        assert answer == {"result": "error", "message": message}
    with pytest.raises(ValueError):
        FakeMatomo(token=TOKEN, visits_log="sometimes")
    with pytest.raises(ValueError):
        FakeMatomo(token=TOKEN, anonymize_ip_bytes=5)


# --- late commits -----------------------------------------------------------------------------------

def test_commit_late_commits_after_the_client_timed_out(fake, http):
    fault = fake.inject("commit_late", seconds=0.6)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(http, fake, [hit("a"), hit("b")], timeout=0.2)
    assert fake.pv_ids() == [] and fake.bulk_in_flight == 1  # the server is still at it
    assert fake.wait_bulk_idle(5)
    assert time.monotonic() - started >= 0.6
    assert fake.pv_ids() == ["a", "b"] and fault.applied == 1
    entry = fake.bulk_log[0]
    assert (entry["fault"], entry["status"], entry["tracked"]) == ("commit_late", "client_gone", 2)
    assert post(http, fake, [hit("c")]).json()["tracked"] == 1  # the next POST is normal


def test_commit_late_answers_a_client_that_waited(fake, http):
    fake.inject("commit_late", seconds=0.3)
    started = time.monotonic()
    resp = post(http, fake, [hit("a")], timeout=5)
    assert time.monotonic() - started >= 0.3
    assert resp.status_code == 200 and resp.json()["tracked"] == 1
    assert fake.bulk_log[0]["status"] == 200 and fake.pv_ids() == ["a"]


def test_commit_late_default_seconds_from_inject_fn_and_bulk_only(fake, http):
    fake.inject_fn(lambda n, reqs: "commit_late" if n == 1 else None)
    started = time.monotonic()
    assert post(http, fake, [hit("a")], timeout=10).json()["tracked"] == 1
    assert 2.0 <= time.monotonic() - started < 4  # default: 2 s
    assert fake.bulk_log[0]["fault"] == "commit_late"
    with pytest.raises(ValueError):
        fake.inject("commit_late", target="api")


def test_commit_delay_commits_even_when_the_client_was_killed():
    with FakeMatomo(token=TOKEN, sites=SITES, commit_delay=0.4) as fake:
        body = json.dumps({"requests": [hit("a")], "token_auth": TOKEN}).encode()
        with socket.create_connection((fake.host, fake.port), timeout=5) as raw:  # a client that dies
            raw.sendall(b"POST /matomo.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body)
            time.sleep(0.1)
        assert fake.pv_ids() == []
        assert fake.wait_bulk_idle(5)
        assert fake.pv_ids() == ["a"] and fake.bulk_log[0]["status"] == "client_gone"
        started = time.monotonic()  # every POST is slow, and answered when the client waits
        assert requests.post(fake.url + "/matomo.php", json={"requests": [hit("b")], "token_auth": TOKEN},
                             timeout=5).json()["tracked"] == 1
        assert time.monotonic() - started >= 0.4
        fake.commit_delay = 0.0
        started = time.monotonic()
        assert requests.post(fake.url + "/matomo.php", json={"requests": [hit("c")], "token_auth": TOKEN},
                             timeout=5).status_code == 200
        assert time.monotonic() - started < 0.4
        assert fake.duplicates() == {} and fake.errors == []


# --- the log generator and the null Matomo that sit beside the fake -------------------------------

def test_gen_logs_manifest_matches_import_logs_rules(tmp_path):
    import gzip
    import re

    out = tmp_path / "access.log"
    manifest = gen.generate(str(out), 3000, seed=5, date="2024-03-14", tz="+0100")
    assert json.loads((tmp_path / "access.log.manifest.json").read_text()) == manifest
    # an independent classifier with import_logs' default rules and check order
    line_re = re.compile(r'(\S+) \S+ \S+ \[([^\]]+)\] "(\S+) (.*?) \S+" (\d+) (\S+) "(.*?)" "(.*?)"$')
    names = ("pages", "static", "downloads", "bots", "http_redirects", "http_errors", "invalid")
    counts = dict.fromkeys(names, 0)
    lines = out.read_text(encoding="utf-8").split("\n")[:-1]
    assert line_re.match(lines[0])
    for line in lines:
        m = line_re.match(line)
        if not m:
            counts["invalid"] += 1
            continue
        path, status, ua = m.group(4), m.group(5), m.group(8).lower()
        ext = path.partition("?")[0].rsplit(".")[-1].lower()
        is_bot = any(s in ua for s in gen.BOT_SUBSTRINGS)
        if ext in gen.DOWNLOAD_EXTS:
            assert status == "200" and not is_bot
            counts["downloads"] += 1
        elif status[0] in "45":
            counts["http_errors"] += 1
        elif status[0] == "3" and status != "304":
            counts["http_redirects"] += 1
        elif ext in gen.STATIC_EXTS:
            counts["static"] += 1
        elif is_bot:
            counts["bots"] += 1
        else:
            counts["pages"] += 1
    assert counts == {k: manifest[k] for k in counts}
    assert manifest["tracked"] == manifest["pages"] + manifest["downloads"] == sum(manifest["days"].values())
    assert sum(counts.values()) == manifest["lines"] == 3000
    # deterministic, gzip included
    gen.generate(str(tmp_path / "again.log"), 3000, seed=5)
    assert (tmp_path / "again.log").read_bytes() == out.read_bytes()
    gen.generate(str(tmp_path / "a.gz"), 500, seed=5, gzip=True)
    gen.generate(str(tmp_path / "b.gz"), 500, seed=5, gzip=True)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    gen.generate(str(tmp_path / "plain.log"), 500, seed=5)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == (tmp_path / "plain.log").read_bytes()


def test_null_matomo_counts_and_keeps_alive():
    url, stop, stats = null.start_null_matomo()
    try:
        with requests.Session() as s:
            for _ in range(3):
                body = {"requests": [{}, {}], "token_auth": "x"}
                resp = s.post(url + "/piwik.php?queuedtracking=0", json=body)
                assert resp.json() == {"status": "success", "tracked": 2, "invalid": 0}
            assert s.post(url + "/matomo.php", data=b"nope").status_code == 400
            site = s.post(url + "/", data={"module": "API", "method": "SitesManager.getSiteFromId", "idSite": "3",
                                           "format": "json", "token_auth": "any"}).json()
            assert site["idsite"] == "3" and site["main_url"]
            version = {"module": "API", "method": "API.getMatomoVersion", "format": "json"}
            assert s.get(url + "/index.php", params=version).json() == {"value": "4.12.3"}
        assert stats.snapshot() == {"requests": 6, "posts": 3, "api_calls": 2, "bad_posts": 1, "connections": 1}
    finally:
        stop()


def test_null_matomo_command_reports_and_exits_on_each_stop_signal():
    """The bench's own process: it stops on SIGTERM and on SIGINT and says what it received
    (a stop handler that hung once left a benchmark waiting forever)."""
    import signal
    import subprocess
    import sys

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen([sys.executable, "-m", "analytics_ingest_tests.null_matomo", "--port", "0"],
                                stdout=subprocess.PIPE, text=True)
        try:
            port = int(proc.stdout.readline().split()[1])
            with requests.Session() as s:
                resp = s.post(f"http://127.0.0.1:{port}/matomo.php", json={"requests": [{}, {}, {}]})
                assert resp.json()["tracked"] == 3
            proc.send_signal(signum)
            out, _ = proc.communicate(timeout=10)
        finally:
            proc.kill()
        assert proc.returncode == 0 and out.strip() == "RECEIVED 3 POSTS 1"
