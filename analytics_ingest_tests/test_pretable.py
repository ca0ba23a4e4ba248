"""Pretables: from our delivered hits (compared with what the fake Matomo stored) and from a
MariaDB holding Matomo's log tables; the D±1 rule; the day's status moving Loaded → Pretable and
back when new hits arrive."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from analytics_ingest.config import load_settings
from analytics_ingest.engine import open_ledger
from analytics_ingest.errors import ConfigError
from analytics_ingest.pretable import COLUMNS, build_pretable, read_pretable_tsv
from analytics_ingest.pretable.build import NotReady
from analytics_ingest.pretable.from_matomo import decode_ip
from analytics_ingest.pretable.matomo_rules import matomo_action, pretable_action_name
from analytics_ingest.sites import load_sites
from analytics_ingest.weblogs import pipeline
from analytics_ingest_tests.db_fixtures import _mariadb_url
from analytics_ingest_tests.fake_matomo import MATOMO_LOG_TABLES
from analytics_ingest_tests.helpers import TOKEN, make_log, put_day_at

DAY = dt.date(2024, 3, 14)


def _sites_file(tmp_path: Path, logs: Path, *, neighbours: bool, source: str = "hits", tz: str = "UTC") -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(
        "sites:\n"
        "  - id: 1\n"
        "    key: web\n"
        "    name: Web\n"
        "    main_url: https://example.org\n"
        f"    log_dir: {logs}\n"
        "    file_pattern: 'access*'\n"
        f"    timezone: {tz}\n"
        "    start_date: 2024-03-01\n"
        f"    pretable: {{source: {source}, wait_for_neighbours: {'true' if neighbours else 'false'}}}\n"
    )
    return path


def _import(settings, site, logs: Path, day: dt.date, lines: int, seed: int, **kw) -> dict:
    manifest = make_log(logs / f"access.log.{day}", lines, seed=seed, date=day.isoformat(), tz="+0000", **kw)
    with open_ledger(settings) as ledger:
        pipeline.queue_day(ledger, site, day)
        report = pipeline.import_day(settings, ledger, site, day)
    assert report.status == "loaded", report.errors
    return manifest


def _setup(tmp_path, fake, *, neighbours=False, source="hits"):
    logs = tmp_path / "logs"
    logs.mkdir()
    site = load_sites(_sites_file(tmp_path, logs, neighbours=neighbours, source=source))[0]
    settings = load_settings(home=tmp_path / "home", matomo_url=fake.url, matomo_token=TOKEN, environ={})
    return site, settings, logs


def _stored_name(hit: dict) -> str:
    """The actionName Matomo's rules give the request the fake stored."""
    url = hit.get("download") or hit["url"]
    return pretable_action_name(*matomo_action(url, download="download" in hit))


def test_pretable_from_hits_has_every_delivered_hit_of_the_day(tmp_path, fake):
    site, settings, logs = _setup(tmp_path, fake)
    manifest = _import(settings, site, logs, DAY, 3000, seed=11)
    with open_ledger(settings) as ledger:
        result = build_pretable(settings, ledger, site, DAY)
        assert ledger.day_status(site.id, DAY) == "pretable"
    rows = list(read_pretable_tsv(result.tsv))
    assert result.rows == len(rows) == manifest["tracked"]
    stored = Counter((h["cdt"], h["cip"], _stored_name(h)) for h in fake.hits(1))
    assert Counter((r[0], r[3], r[6]) for r in rows) == stored
    assert all(r[1] for r in rows)  # every generated agent is a known browser
    assert all(r[4] is None and r[5] is None for r in rows)  # no geolocation database configured
    assert any(":" in r[3] for r in rows)  # IPv6 visitors keep their address
    frame = pd.read_parquet(result.parquet)
    assert list(frame.columns) == list(COLUMNS) and len(frame) == len(rows)
    assert str(frame["serverTime"].dtype).startswith("datetime64") and frame["latitude"].isna().all()
    header = Path(result.tsv).read_text().splitlines()[0]
    assert header == "\t".join(COLUMNS) and "\tNULL\t" in Path(result.tsv).read_text()


def test_geolocation_comes_from_a_maxmind_format_database(tmp_path, fake):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    site, settings, logs = _setup(tmp_path, fake)
    _import(settings, site, logs, DAY, 800, seed=5)
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    writer.insert_network(IPSet(["0.0.0.0/1"]), {"location": {"latitude": 48.8566, "longitude": 2.3522}})
    mmdb = tmp_path / "city.mmdb"
    writer.to_db_file(str(mmdb))
    with open_ledger(settings) as ledger:
        result = build_pretable(replace(settings, geoip_db=str(mmdb)), ledger, site, DAY)
    rows = list(read_pretable_tsv(result.tsv))
    low = [r for r in rows if "." in r[3] and int(r[3].split(".")[0]) < 128]
    high = [r for r in rows if "." in r[3] and int(r[3].split(".")[0]) >= 128]
    assert result.geolocated and low and high
    assert all((r[4], r[5]) == (48.8566, 2.3522) for r in low)
    assert all((r[4], r[5]) == (None, None) for r in high)
    with open_ledger(settings) as ledger, pytest.raises(ConfigError, match="ANALYTICS_INGEST_GEOIP_DB"):
        build_pretable(replace(settings, geoip_db=str(tmp_path / "nope.mmdb")), ledger, site, DAY)


def test_a_day_waits_for_its_neighbours_then_steps_back_when_new_hits_arrive(tmp_path, fake):
    site, settings, logs = _setup(tmp_path, fake, neighbours=True)
    _import(settings, site, logs, DAY, 300, seed=1)
    with open_ledger(settings) as ledger:
        with pytest.raises(NotReady, match=r"neighbour 2024-03-13 is .*neighbour 2024-03-15"):
            build_pretable(settings, ledger, site, DAY)
    before = DAY - dt.timedelta(days=1)
    after = DAY + dt.timedelta(days=1)
    _import(settings, site, logs, before, 200, seed=2)
    with open_ledger(settings) as ledger, pytest.raises(NotReady, match="neighbour 2024-03-15 is"):
        build_pretable(settings, ledger, site, DAY)
    _import(settings, site, logs, after, 200, seed=3)
    with open_ledger(settings) as ledger:
        first = build_pretable(settings, ledger, site, DAY)
        assert ledger.day_status(site.id, DAY) == "pretable"
    # rsync appends a late line: the day is imported again and its pretable is stale
    with open(logs / f"access.log.{DAY}", "a") as fh:
        fh.write('81.2.69.160 - - [14/Mar/2024:23:59:00 +0000] "GET /late HTTP/1.1" 200 5 "-" "Mozilla/5.0"\n')
    with open_ledger(settings) as ledger:
        pipeline.queue_day(ledger, site, DAY)
        assert pipeline.import_day(settings, ledger, site, DAY).status == "loaded"
        second = build_pretable(settings, ledger, site, DAY)
        assert ledger.day_status(site.id, DAY) == "pretable"
    assert second.rows == first.rows + 1
    assert fake.duplicates() == {}


def test_matomo_db_source_needs_its_url(tmp_path, fake):
    site, settings, logs = _setup(tmp_path, fake, source="matomo_db")
    _import(settings, site, logs, DAY, 100, seed=1)
    with open_ledger(settings) as ledger, pytest.raises(ConfigError, match="MATOMO_DB_URL is not set"):
        build_pretable(settings, ledger, site, DAY)


def test_decode_ip_handles_ipv4_ipv6_and_mapped():
    assert decode_ip(bytes([81, 2, 69, 160])) == "81.2.69.160"
    assert decode_ip(bytes.fromhex("20010db8000000000000000000000001")) == "2001:db8::1"
    assert decode_ip(bytes.fromhex("00000000000000000000ffff5102450a")) == "81.2.69.10"
    assert decode_ip(b"") is None and decode_ip(None) is None


# -- Matomo's log tables on the real MariaDB ----------------------------------------------------
MATOMO_TABLES = MATOMO_LOG_TABLES  # Matomo 4.12.3's columns that the pretable reads, real types


@pytest.fixture
def matomo_db():
    gen = _mariadb_url()
    url = next(gen)
    engine = create_engine(url)
    with engine.begin() as conn:
        for ddl in MATOMO_TABLES:
            conn.exec_driver_sql(ddl)
        conn.exec_driver_sql(
            "INSERT INTO matomo_log_visit (idvisit, idsite, location_ip, config_browser_name, config_browser_version, "
            "location_latitude, location_longitude) VALUES "
            "(1, 1, UNHEX('5102450A'), 'CH', '122.0', 48.856600, 2.352200), "
            "(2, 1, UNHEX('20010DB8000000000000000000000001'), 'FF', '123.0', NULL, NULL), "
            "(3, 2, UNHEX('0A000001'), 'CH', '122.0', NULL, NULL)")
        conn.exec_driver_sql(
            "INSERT INTO matomo_log_action VALUES (1, 'example.org/a', 1, 1, 2), "
            "(2, 'https://www.example.org/f.pdf', 2, 3, NULL), (3, 'event category', 3, 10, NULL)")
        conn.exec_driver_sql(
            "INSERT INTO matomo_log_link_visit_action (idsite, idvisit, idaction_url, server_time) VALUES "
            # Paris day 2024-03-14 is 2024-03-13 23:00 to 2024-03-14 23:00 UTC
            "(1, 1, 1, '2024-03-13 22:59:59'), (1, 1, 1, '2024-03-13 23:00:00'), (1, 1, 2, '2024-03-14 12:00:00'), "
            "(1, 2, 1, '2024-03-14 22:59:59'), (1, 2, 3, '2024-03-14 10:00:00'), (1, 2, 1, '2024-03-14 23:00:00'), "
            "(2, 3, 1, '2024-03-14 12:00:00')")
    engine.dispose()
    yield url
    for _ in gen:
        pass


def test_pretable_from_matomo_tables_takes_the_local_day_with_ipv6(tmp_path, matomo_db):
    logs = tmp_path / "logs"
    logs.mkdir()
    site = load_sites(_sites_file(tmp_path, logs, neighbours=False, source="matomo_db", tz="Europe/Paris"))[0]
    settings = load_settings(home=tmp_path / "home", environ={"MATOMO_DB_URL": matomo_db})
    with open_ledger(settings) as ledger:
        put_day_at(ledger, site.id, DAY, "loaded")
        result = build_pretable(settings, ledger, site, DAY)
        assert ledger.day_status(site.id, DAY) == "pretable"
    rows = sorted(read_pretable_tsv(result.tsv))
    assert rows == [
        ("2024-03-13 23:00:00", "Chrome", "122.0", "81.2.69.10", 48.8566, 2.3522, "example.org/a"),
        ("2024-03-14 12:00:00", "Chrome", "122.0", "81.2.69.10", 48.8566, 2.3522, "example.org/f.pdf"),
        ("2024-03-14 22:59:59", "Firefox", "123.0", "2001:db8::1", None, None, "example.org/a"),
    ]
    bad = load_settings(home=tmp_path / "home",
                        environ={"MATOMO_DB_URL": matomo_db, "MATOMO_DB_TABLE_PREFIX": "piwik_"})
    with open_ledger(bad) as ledger, pytest.raises(ConfigError, match="MATOMO_DB_TABLE_PREFIX"):
        build_pretable(bad, ledger, site, DAY)


def test_a_neighbour_with_no_files_expected_does_not_block(tmp_path, fake):
    site, settings, logs = _setup(tmp_path, fake, neighbours=True)
    _import(settings, site, logs, DAY, 200, seed=4)
    with open_ledger(settings) as ledger:
        ledger.set_expected_files(site.id, DAY - dt.timedelta(days=1), DAY - dt.timedelta(days=1), 0)  # a planned outage
        ledger.set_expected_files(site.id, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=1), 0)
        assert build_pretable(settings, ledger, site, DAY).rows > 0
        assert ledger.day_status(site.id, DAY - dt.timedelta(days=1)) == "loaded"
