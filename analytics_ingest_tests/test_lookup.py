"""Settling a batch by pv_id: through Matomo's MySQL tables and through the Reporting API."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from analytics_ingest.matomo.api import MatomoApi
from analytics_ingest.matomo.batches import Batch
from analytics_ingest.matomo.lookup import ApiLookup, MysqlLookup
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


def test_api_lookup_uses_live_filtered_by_ip_including_ipv6():
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
