"""A day is the site's local day, in the ledger as in the partitions (issue #13 item 1).

A day's log, written in the site's own timezone, goes through the steps the Dagster assets run
(``queue_day`` → ``import_day``) for sites at UTC, UTC−10, UTC+5:30, UTC+13 and on a DST change
day: the day becomes Loaded, it is the only day in the ledger, and the file's days are exactly
the site-local days of its hits — no phantom neighbour day from UTC.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest

from analytics_ingest.config import load_settings
from analytics_ingest.engine import open_ledger
from analytics_ingest.pretable.build import build_pretable
from analytics_ingest.site_time import local_days
from analytics_ingest.sites import load_sites
from analytics_ingest.vocabulary import DAY_LOADED, FILE_LOADED
from analytics_ingest.weblogs import pipeline

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _day_log(path, day: dt.date, timezone: str, hits: int, seed: int) -> None:
    """``hits`` page views spread over the whole local ``day``, each stamped with its own offset
    (so a DST change day carries both)."""
    rng = random.Random(seed)
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone)
    # in UTC: aware datetimes of one zone subtract as wall clocks (24 h even on a 23-hour day)
    span = int((end.astimezone(dt.timezone.utc) - start.astimezone(dt.timezone.utc)).total_seconds())
    stamps = sorted(rng.randrange(span) for _ in range(hits - 2)) + [0, span - 1]
    lines = []
    for n, second in enumerate(sorted(stamps)):
        t = (start.astimezone(dt.timezone.utc) + dt.timedelta(seconds=second)).astimezone(zone)
        offset = t.utcoffset()
        sign = "-" if offset < dt.timedelta(0) else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        stamp = f"{t.day:02d}/{MONTHS[t.month - 1]}/{t.year}:{t:%H:%M:%S} {sign}{minutes // 60:02d}{minutes % 60:02d}"
        ip = f"198.51.{n % 200}.{(n * 7) % 250 + 1}"
        lines.append(f'{ip} - - [{stamp}] "GET /page/{n} HTTP/1.1" 200 512 "-" '
                     '"Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"\n')
    path.write_text("".join(lines))


@pytest.mark.parametrize("timezone, day", [
    ("UTC", dt.date(2024, 3, 14)),
    ("Pacific/Honolulu", dt.date(2024, 3, 14)),  # UTC−10
    ("Asia/Kolkata", dt.date(2024, 3, 14)),  # UTC+5:30
    ("Pacific/Auckland", dt.date(2024, 1, 15)),  # UTC+13 (New Zealand summer time)
    ("Europe/Paris", dt.date(2024, 3, 31)),  # 23-hour day: clocks go forward at 02:00
    ("America/New_York", dt.date(2024, 11, 3)),  # 25-hour day: clocks go back at 02:00
])
def test_a_site_local_day_is_the_only_day_and_becomes_loaded(tmp_path, monkeypatch, timezone, day):
    for name in ("MATOMO_URL", "MATOMO_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    logs = tmp_path / "logs"
    logs.mkdir()
    _day_log(logs / f"access.log.{day}", day, timezone, 400, seed=day.toordinal())
    sites_file = tmp_path / "sites.yaml"
    sites_file.write_text(
        f"sites:\n  - id: 1\n    key: web\n    name: Web\n    main_url: https://example.org\n    log_dir: logs\n"
        f"    file_pattern: 'access.log*'\n    timezone: {timezone}\n    start_date: {day - dt.timedelta(days=5)}\n"
        f"    expected_files: [{{from: {day - dt.timedelta(days=5)}, count: 1}}]\n"
        f"    pretable: {{wait_for_neighbours: false}}\n")
    (site,) = load_sites(str(sites_file))
    settings = load_settings(home=tmp_path / "home", environ={})
    with open_ledger(settings) as ledger:
        queued = pipeline.queue_day(ledger, site, day)
        assert [f["status"] for f in queued.files] == ["queue"]
        imported = pipeline.import_day(settings, ledger, site, day)
        assert imported.status == DAY_LOADED, imported.errors
        (result,) = imported.results
        assert result.days == {day.isoformat(): 400}
        (record,) = ledger.list_files(site_id=1)
        assert record.status == FILE_LOADED and record.day == day
        assert ledger.file_days(record.id) == {day: 400}
        rows = ledger.day_statuses(site_id=1)
        assert [(r.day, r.status, r.found, r.loaded) for r in rows] == [(day, DAY_LOADED, 1, 1)]
        # the neighbours are not touched: asked for, they have no file of their own
        for neighbour in (day - dt.timedelta(days=1), day + dt.timedelta(days=1)):
            assert ledger.files_feeding_day(1, neighbour) == []
        # the next stage reads the same site-local day back: every hit, none of a neighbour's
        pretable = build_pretable(settings, ledger, site, day)
        assert pretable.rows == 400 and ledger.day_status(1, day) == "pretable"


def test_local_days_put_each_utc_minute_on_its_side_of_midnight():
    minutes = {"2024-03-13 18:29": 1, "2024-03-13 18:30": 2, "2024-03-14 18:29": 4, "2024-03-14 18:30": 8}
    assert local_days(minutes, "Asia/Kolkata") == {"2024-03-13": 1, "2024-03-14": 6, "2024-03-15": 8}
    assert local_days(minutes, "UTC") == {"2024-03-13": 3, "2024-03-14": 12}
    assert local_days(minutes, "Pacific/Honolulu") == {"2024-03-13": 3, "2024-03-14": 12}
    assert local_days({"2024-01-14 10:59": 1, "2024-01-14 11:00": 1}, "Pacific/Auckland") == {
        "2024-01-14": 1, "2024-01-15": 1}


def test_a_sites_file_timezone_that_is_not_matomos_is_one_line(tmp_path):
    """One site, one timezone: the sites file's days must be Matomo's days."""
    from analytics_ingest.engine import make_importer
    from analytics_ingest.errors import ConfigError
    from analytics_ingest_tests.fake_matomo import FakeMatomo
    from analytics_ingest_tests.helpers import SITES, TOKEN

    with FakeMatomo(token=TOKEN, sites=SITES) as fake:  # site 2 is Europe/Paris in Matomo
        settings = load_settings(home=tmp_path / "home", matomo_url=fake.url, matomo_token=TOKEN, environ={})
        with open_ledger(settings) as ledger:
            with pytest.raises(ConfigError, match=r"^site 2: the sites file says timezone UTC but Matomo's site 2 "
                                                  r"is in Europe/Paris; .*Websites > Manage"):
                make_importer(settings, ledger, 2, timezone="UTC")
            with make_importer(settings, ledger, 2, timezone="Europe/Paris") as importer:
                assert importer.site.timezone == "Europe/Paris"
            with make_importer(settings, ledger, 1, timezone="Etc/UTC") as importer:
                assert importer.site.timezone == "Etc/UTC"


ZONES = ["UTC", "Pacific/Honolulu", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Auckland", "Pacific/Chatham",
         "Europe/Paris", "America/New_York", "Pacific/Kiritimati"]


@pytest.mark.parametrize("zone", ZONES)
def test_local_days_keep_every_hit_and_put_it_on_its_local_date(zone):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

    @settings(max_examples=60, deadline=None)
    @given(st.dictionaries(st.integers(0, 366 * 24 * 60), st.integers(1, 50), max_size=40))
    def check(offsets):
        minutes = {(start + dt.timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M"): n for m, n in offsets.items()}
        days = local_days(minutes, zone)
        assert sum(days.values()) == sum(minutes.values())
        expected: dict[str, int] = {}
        for m, n in offsets.items():
            day = (start + dt.timedelta(minutes=m)).astimezone(ZoneInfo(zone)).date().isoformat()
            expected[day] = expected.get(day, 0) + n
        assert days == expected

    check()


def test_a_cli_import_names_days_by_the_sites_file_timezone_offline(tmp_path, monkeypatch):
    """The CLI is a shell over the same engine: with the sites file the user configured, its days
    are the site's days, not UTC days (offline there is no Matomo to ask)."""
    from analytics_ingest.cli.main import main

    day = dt.date(2024, 3, 14)
    log = tmp_path / "access.log"
    _day_log(log, day, "Pacific/Honolulu", 300, seed=11)
    sites_file = tmp_path / "sites.yaml"
    sites_file.write_text(
        "sites:\n  - id: 1\n    key: web\n    name: Web\n    main_url: https://example.org\n    log_dir: .\n"
        f"    timezone: Pacific/Honolulu\n    start_date: {day}\n")
    for name in ("MATOMO_URL", "MATOMO_API_TOKEN", "ANALYTICS_INGEST_LEDGER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANALYTICS_INGEST_SITES", str(sites_file))
    home = tmp_path / "home"
    assert main(["import", str(log), "--site", "1", "--home", str(home), "--no-progress", "--json"]) == 0
    with open_ledger(load_settings(home=home, environ={})) as ledger:
        (record,) = ledger.list_files(site_id=1)
        assert ledger.file_days(record.id) == {day: 300}  # UTC would split it over the 14th and 15th
        assert [(r.day, r.status) for r in ledger.day_statuses(site_id=1)] == [(day, DAY_LOADED)]
