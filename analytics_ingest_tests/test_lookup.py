"""Settling a batch by pv_id: through Matomo's MySQL tables and through the Reporting API."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import create_engine

from analytics_ingest.errors import ConfigError
from analytics_ingest.matomo.api import MatomoApi, MatomoApiError
from analytics_ingest.matomo.batches import Batch
from analytics_ingest.matomo.lookup import ApiLookup, LiveApiUnavailable, MysqlLookup
from analytics_ingest_tests.db_fixtures import _mariadb_url
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN


@pytest.fixture
def matomo_db():
    """A MariaDB database holding the columns of Matomo's log_link_visit_action we query."""
    gen = _mariadb_url()
    url = next(gen)
    engine = create_engine(url)
    with engine.begin() as conn:
        # The real table (Matomo 4.12.3) has idpageview CHAR(6) and an index (idsite, server_time).
        conn.exec_driver_sql(
            "CREATE TABLE matomo_log_link_visit_action (idlink_va BIGINT AUTO_INCREMENT PRIMARY KEY, "
            "idsite INT UNSIGNED NOT NULL, idvisit BIGINT UNSIGNED NOT NULL, idpageview CHAR(6) NULL, "
            "server_time DATETIME NOT NULL, INDEX index_idsite_servertime (idsite, server_time))"
        )
        conn.exec_driver_sql(
            "INSERT INTO matomo_log_link_visit_action (idsite, idvisit, idpageview, server_time) VALUES "
            "(1, 1, 'aaaaaa', '2024-03-14 10:00:00'), (1, 1, 'bbbbbb', '2024-03-14 10:00:05'), "
            "(2, 2, 'cccccc', '2024-03-14 10:00:06'), (1, 3, 'dddddd', '2024-03-20 10:00:00')"
        )
    engine.dispose()
    yield url
    for _ in gen:
        pass


def _batch(*rows):
    return Batch.from_items(0, [(n, pv, ip, cdt, "{}") for n, (pv, ip, cdt) in enumerate(rows, 1)])


def test_mysql_lookup_finds_exactly_the_stored_hits_of_the_batch(matomo_db):
    lookup = MysqlLookup(matomo_db, idsite=1)
    batch = _batch(("aaaaaa", "192.0.2.1", "2024-03-14 10:00:00"),
                   ("bbbbbb", "192.0.2.1", "2024-03-14 10:00:05"),
                   ("cccccc", "192.0.2.2", "2024-03-14 10:00:06"),  # other site
                   ("dddddd", "192.0.2.3", "2024-03-14 10:00:07"),  # same id, other time: not ours
                   ("eeeeee", "192.0.2.4", "2024-03-14 10:00:08"))
    assert lookup.present(batch) == {"aaaaaa", "bbbbbb"}


def test_api_lookup_finds_hits_around_midnight_including_ipv6():
    with FakeMatomo(token=TOKEN, sites=SITES) as fake:
        import requests

        stored = [{"idsite": 1, "rec": 1, "url": "https://example.org/a", "cip": ip, "cdt": cdt, "pv_id": pv}
                  for pv, ip, cdt in (("aaaaaa", "192.0.2.1", "2024-03-14 23:59:59"),
                                      ("bbbbbb", "2001:db8::7", "2024-03-15 00:00:01"),
                                      ("zzzzzz", "192.0.2.9", "2024-03-14 12:00:00"))]
        assert requests.post(fake.url + "/matomo.php", json={"requests": stored, "token_auth": TOKEN}).ok
        lookup = ApiLookup(MatomoApi(fake.url, TOKEN), 1)
        batch = _batch(("aaaaaa", "192.0.2.1", "2024-03-14 23:59:59"),
                       ("bbbbbb", "2001:db8::7", "2024-03-15 00:00:01"),
                       ("cccccc", "192.0.2.1", "2024-03-14 23:59:59"))
        assert lookup.present(batch) == {"aaaaaa", "bbbbbb"}
        assert all(TOKEN not in str(entry) for entry in fake.requests_log)


def test_api_lookup_finds_hits_of_a_user_id_visit_that_came_from_another_ip():
    """Seen on a real Matomo 4.12.3: a uid hit from a second IP joins the visit of the first IP."""
    import json as _json

    import requests

    with FakeMatomo(token=TOKEN, sites=SITES) as fake:
        first = {"idsite": 1, "rec": 1, "url": "https://example.org/a", "cip": "192.0.2.1", "uid": "chloé",
                 "cdt": "2024-03-14 10:00:00", "pv_id": "aaaaaa"}
        second = {**first, "cip": "198.51.100.7", "cdt": "2024-03-14 10:05:00", "pv_id": "bbbbbb"}
        assert requests.post(fake.url + "/matomo.php", json={"requests": [first, second], "token_auth": TOKEN}).ok
        lookup = ApiLookup(MatomoApi(fake.url, TOKEN), 1)
        batch = Batch.from_items(0, [(2, "bbbbbb", "198.51.100.7", "2024-03-14 10:05:00", _json.dumps(second))])
        assert lookup.present(batch) == {"bbbbbb"}


# --- the Reporting API look-up does not depend on the IP ------------------------------------------

def _request(pv, ip, cdt, idsite=1, **extra):
    return {"idsite": idsite, "rec": 1, "url": f"https://example.org/p/{pv}", "cip": ip, "cdt": cdt,
            "pv_id": pv, "ua": "Mozilla/5.0 (test)", **extra}


def _track(fake, reqs):
    resp = requests.post(fake.url + "/matomo.php", json={"requests": reqs, "token_auth": TOKEN}, timeout=10)
    assert resp.ok and resp.json()["tracked"] == len(reqs)


def _as_batch(reqs):
    return Batch.from_items(0, [(n, r["pv_id"], r["cip"], r["cdt"], json.dumps(r)) for n, r in enumerate(reqs, 1)])


def _live_params(fake):
    return [p for _m, _path, p in fake.requests_log if p.get("method") == "Live.getLastVisitsDetails"]


@pytest.mark.parametrize("masked_bytes", [0, 1, 2, 3])
def test_api_lookup_finds_exactly_the_stored_hits_whatever_the_ip_anonymisation(masked_bytes):
    with FakeMatomo(token=TOKEN, sites=SITES, anonymize_ip_bytes=masked_bytes) as fake:
        stored = [
            _request("aaaaaa", "198.51.100.7", "2024-03-14 23:59:30"),
            _request("bbbbbb", "198.51.100.7", "2024-03-15 00:00:10"),  # after midnight: another visit
            _request("cccccc", "2001:db8:1234:5678::9", "2024-03-14 23:58:00"),
            _request("uuuuu1", "192.0.2.10", "2024-03-14 23:40:00", uid="chloé"),  # one user, three IPs
            _request("uuuuu2", "203.0.113.20", "2024-03-14 23:50:00", uid="chloé"),
            _request("uuuuu3", "2001:db8:ffff::1", "2024-03-14 23:55:00", uid="chloé"),
            _request("vvvvv1", "192.0.2.10", "2024-03-15 00:01:00", uid="léo"),
        ]
        decoys = [
            _request("dddddd", "198.51.100.8", "2024-03-14 23:59:47"),  # the batch's id, but not its hit
            _request("eeeeee", "198.51.100.7", "2024-03-14 23:59:30", idsite=2),  # another site
            _request("zzzzzz", "198.51.100.9", "2024-03-14 12:00:00"),  # not in the batch
        ]
        _track(fake, stored + decoys)
        batch = _as_batch(stored + [
            _request("dddddd", "198.51.100.8", "2024-03-14 23:59:40"),
            _request("eeeeee", "198.51.100.7", "2024-03-14 23:59:30"),
            _request("ffffff", "198.51.100.7", "2024-03-15 00:00:20"),  # never arrived
            _request("gggggg", "203.0.113.20", "2024-03-14 23:50:05", uid="chloé"),  # never arrived
        ])
        lookup = ApiLookup(MatomoApi(fake.url, TOKEN), 1)
        assert lookup.present(batch) == {r["pv_id"] for r in stored}
        if masked_bytes:  # what the IP look-up asked for finds nothing any more
            by_ip = requests.post(fake.url + "/index.php", data={
                "module": "API", "format": "json", "method": "Live.getLastVisitsDetails", "idSite": 1,
                "period": "range", "date": "2024-03-13,2024-03-16", "segment": "visitIp==198.51.100.7",
                "token_auth": TOKEN}, timeout=10).json()
            assert by_ip == []
        calls = _live_params(fake)[:lookup.calls]
        assert calls and all("visitIp" not in p.get("segment", "") and "userId" not in p.get("segment", "")
                             for p in calls)
        assert all(0 < int(p["filter_limit"]) <= 100 for p in calls)
        assert all(TOKEN not in str(entry) for entry in fake.requests_log)
        assert fake.errors == []


def test_api_lookup_splits_busy_minutes_and_pages_with_bounded_requests():
    with FakeMatomo(token=TOKEN, sites=SITES, anonymize_ip_bytes=2) as fake:
        busy = [_request(f"b{i:05d}", f"10.1.{i // 250}.{i % 250}", f"2024-03-14 10:00:{i % 60:02d}")
                for i in range(70)]  # 70 visitors within 10:00
        calm = [_request(f"c{i:05d}", f"10.2.0.{i}", f"2024-03-14 10:{1 + i // 10:02d}:{i % 60:02d}")
                for i in range(30)]  # 10:01 .. 10:03
        late = [_request(f"l{i:05d}", f"10.3.0.{i}", f"2024-03-14 11:00:{i:02d}") for i in range(5)]
        _track(fake, busy + calm + late)
        wanted = busy[::7] + calm[::3] + late[:1]
        missing = [_request("xxxxxx", "10.9.9.9", "2024-03-14 10:00:30")]
        lookup = ApiLookup(MatomoApi(fake.url, TOKEN), 1)
        lookup.page_size, lookup.page_overlap = 20, 5
        assert lookup.present(_as_batch(wanted + missing)) == {r["pv_id"] for r in wanted}
        calls = _live_params(fake)
        assert len(calls) == lookup.calls
        assert all(p["filter_limit"] == "20" for p in calls)
        offsets = sorted({int(p["filter_offset"]) for p in calls})
        assert offsets[:3] == [0, 15, 30]  # the busy minute was paged, pages overlapping by 5
        segments = {p["segment"] for p in calls}
        assert "actionServerHour==10;actionServerMinute==0" in segments  # split down to one minute
        assert all(len(p["segment"]) < 8192 for p in calls)
        assert len(calls) < 40


def test_api_lookup_matches_action_times_shifted_by_the_site_timezone():
    """Live's action ``timestamp`` is server_time read in the site's timezone (Paris: +1 h)."""
    cdt = "2024-03-14 10:00:00"
    utc = 1710410400

    class Api:
        def __init__(self, shift):
            self.shift = shift

        def call(self, method, **params):
            assert method == "Live.getLastVisitsDetails"
            return [{"actionDetails": [{"idpageview": "aaaaaa", "timestamp": utc + self.shift}]}]

    batch = _batch(("aaaaaa", "192.0.2.1", cdt))
    assert ApiLookup(Api(3600), 2).present(batch) == {"aaaaaa"}
    assert ApiLookup(Api(-5 * 3600 - 1800), 2).present(batch) == {"aaaaaa"}
    assert ApiLookup(Api(0), 2).present(batch) == {"aaaaaa"}
    assert ApiLookup(Api(7), 2).present(batch) == set()  # same id, another hit
    assert ApiLookup(Api(15 * 3600), 2).present(batch) == set()


# --- Live missing or denied: one actionable line, not retried as if Matomo were unwell --------------

@pytest.mark.parametrize("options, token, expected", [
    ({"live_enabled": False}, TOKEN,
     "cannot settle an interrupted batch: Matomo's Live API is not enabled (plugin Live deactivated) — "
     "activate it or set MATOMO_DB_URL for look-ups in Matomo's database"),
    ({"visits_log": "site"}, TOKEN,
     "cannot settle an interrupted batch: Matomo's Live API is disabled for site 1 (visits log deactivated in "
     "the website's settings) — enable the visits log or set MATOMO_DB_URL for look-ups in Matomo's database"),
    ({"visits_log": "global"}, TOKEN,
     "cannot settle an interrupted batch: Matomo's Live API is disabled (visits log deactivated in General "
     "settings) — enable the visits log or set MATOMO_DB_URL for look-ups in Matomo's database"),
    ({}, "not-the-token",
     "cannot settle an interrupted batch: Matomo denies the Live API: MATOMO_API_TOKEN has no view access to "
     "site 1 — grant it or set MATOMO_DB_URL for look-ups in Matomo's database"),
])
def test_api_lookup_without_live_says_so_in_one_line(options, token, expected):
    with FakeMatomo(token=TOKEN, sites=SITES, **options) as fake:
        lookup = ApiLookup(MatomoApi(fake.url, token), 1)
        with pytest.raises(LiveApiUnavailable) as info:
            lookup.present(_batch(("aaaaaa", "192.0.2.1", "2024-03-14 10:00:00")))
        assert str(info.value) == expected and "\n" not in str(info.value)
        assert isinstance(info.value, ConfigError)
        assert TOKEN not in str(info.value) and token not in str(info.value)
        with pytest.raises(LiveApiUnavailable):
            lookup.check()
        assert lookup.calls == 2  # one call each: no retry inside the look-up


def test_api_lookup_transient_failures_stay_retryable():
    with FakeMatomo(token=TOKEN, sites=SITES) as fake:
        fake.inject("500_before_commit", target="api")
        lookup = ApiLookup(MatomoApi(fake.url, TOKEN, timeout=5), 1)
        batch = _batch(("aaaaaa", "192.0.2.1", "2024-03-14 10:00:00"))
        with pytest.raises(MatomoApiError) as info:
            lookup.present(batch)
        assert not isinstance(info.value, ConfigError)
        assert lookup.present(batch) == set()
        lookup.check()


def test_api_lookup_finds_a_batch_that_matomo_committed_after_the_client_gave_up():
    """The ``commit_late`` fault: the look-up must run after Matomo finished, or it misses hits."""
    with FakeMatomo(token=TOKEN, sites=SITES, anonymize_ip_bytes=1) as fake:
        reqs = [_request(f"k{i:05d}", f"192.0.2.{i}", f"2024-03-14 10:00:{i:02d}") for i in range(5)]
        fake.inject("commit_late", seconds=0.5)
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(fake.url + "/matomo.php", json={"requests": reqs, "token_auth": TOKEN}, timeout=0.1)
        lookup = ApiLookup(MatomoApi(fake.url, TOKEN), 1)
        assert lookup.present(_as_batch(reqs)) == set()  # too early: not committed yet
        assert fake.wait_bulk_idle(5)
        assert lookup.present(_as_batch(reqs)) == {r["pv_id"] for r in reqs}
