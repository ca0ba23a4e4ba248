"""A site's timezone, resolved in one place (`site_time`), including Matomo's manual UTC offsets.

Matomo lets a site be in ``UTC+5.5`` or ``UTC-11.5`` instead of an IANA zone; every reader of a
day must give such a site the same local days, and a zone nobody can read is one line before
anything is sent, never a failure after the hits reached Matomo.
"""

from __future__ import annotations

import datetime as dt

import pytest

from analytics_ingest.config import load_settings
from analytics_ingest.engine import make_importer, open_ledger
from analytics_ingest.errors import ConfigError
from analytics_ingest.logs import open_log, scan
from analytics_ingest.site_time import LocalDay, local_day_of_minute, local_days, site_zone
from analytics_ingest.weblogs.importer import ImportOptions
from analytics_ingest.weblogs.lanes import DayGate
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import TOKEN, make_log


@pytest.mark.parametrize(("name", "offset"), [
    ("UTC", dt.timedelta(0)), ("", dt.timedelta(0)), ("Etc/UTC", dt.timedelta(0)), ("UTC+0", dt.timedelta(0)),
    ("UTC+5.5", dt.timedelta(hours=5, minutes=30)), ("UTC-11.5", -dt.timedelta(hours=11, minutes=30)),
    ("UTC+12.75", dt.timedelta(hours=12, minutes=45)), ("UTC+5.75", dt.timedelta(hours=5, minutes=45)),
    ("UTC+14", dt.timedelta(hours=14)), ("UTC-12", -dt.timedelta(hours=12)),
])
def test_matomo_offsets_and_utc_names(name, offset):
    assert site_zone(name).utcoffset(dt.datetime(2024, 3, 14)) == offset


def test_iana_names_and_unknown_ones():
    paris = site_zone("Europe/Paris")
    assert paris.utcoffset(dt.datetime(2024, 7, 1)) == dt.timedelta(hours=2)
    assert site_zone(paris) is paris
    for bad in ("Mars/Base", "UTC+15", "UTC+5.3", "../etc/passwd", "UTC+5.5x"):
        with pytest.raises(ConfigError) as exc:
            site_zone(bad)
        text = str(exc.value)
        assert "\n" not in text and "unknown timezone" in text and "Europe/Paris" in text


def test_a_utc_hour_of_a_half_hour_zone_holds_two_local_days():
    # Asia/Kolkata and Matomo's UTC+5.5: 18:15 UTC is 23:45 on the 14th, 18:45 UTC is 00:15 on the 15th.
    for zone in ("Asia/Kolkata", "UTC+5.5"):
        day_of = local_day_of_minute(zone)
        assert day_of("2024-03-14 18:15") == "2024-03-14"
        assert day_of("2024-03-14 18:45") == "2024-03-15"
        assert local_days({"2024-03-14 18:15": 2, "2024-03-14 18:45": 3}, zone) == {"2024-03-14": 2, "2024-03-15": 3}
        assert LocalDay(zone).bounds_utc(dt.date(2024, 3, 15))[0] == dt.datetime(2024, 3, 14, 18, 30,
                                                                                  tzinfo=dt.timezone.utc)
    gate = DayGate("UTC+5.5")
    assert gate._day_of_minute("2024-03-14 18:45") == "2024-03-15"


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker-processes"])
def test_a_matomo_site_in_a_manual_utc_offset_imports_with_its_local_days(tmp_path, parallel):
    log = tmp_path / "access.log"
    manifest = make_log(log, 2000, seed=5)
    with open_log(log) as source:
        expected_days = local_days(scan(source).utc_minutes, "UTC+5.5")
    sites = {1: {"name": "Offset", "main_url": "https://example.org", "timezone": "UTC+5.5"}}
    with FakeMatomo(token=TOKEN, sites=sites) as fake:
        settings = load_settings(home=tmp_path / "home", matomo_url=fake.url, matomo_token=TOKEN, environ={})
        ledger = open_ledger(settings)
        try:
            with make_importer(settings, ledger, 1, parallel=parallel) as importer:
                if parallel:
                    importer.parallel_min_bytes, importer.job_lines = 0, 300
                result = importer.import_file(str(log), ImportOptions(lanes=4, batch_size=50))
        finally:
            ledger.close()
        assert result.status == "loaded" and result.delivered == manifest["tracked"]
        assert result.days == expected_days and len(expected_days) >= 1
        assert fake.duplicates() == {} and len(fake.pv_ids(1)) == manifest["tracked"]
        assert fake.errors == []


def test_a_site_zone_nobody_can_read_stops_before_anything_is_sent(tmp_path):
    log = tmp_path / "access.log"
    make_log(log, 200, seed=6)
    sites = {1: {"name": "Odd", "main_url": "https://example.org", "timezone": "Mars/Base"}}
    with FakeMatomo(token=TOKEN, sites=sites) as fake:
        settings = load_settings(home=tmp_path / "home", matomo_url=fake.url, matomo_token=TOKEN, environ={})
        ledger = open_ledger(settings)
        try:
            with pytest.raises(ConfigError) as exc:
                make_importer(settings, ledger, 1)
        finally:
            ledger.close()
        assert "Mars/Base" in str(exc.value) and fake.bulk_posts == 0
