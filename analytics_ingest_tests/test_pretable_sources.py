"""Issue 15 item 1: the two pretable sources give the same rows.

A generated day plus hand-written lines with every feature that made them differ (site searches,
downloads on ``https://www.``, ``utm_*``/``gclid``/``fbclid`` URLs, Chrome/Firefox/Safari/Edge and
mobile agents, bots our classifier drops and bots only Matomo drops) is imported with the engine
into the fake Matomo; the fake writes what it stored into Matomo-shaped log tables on the
machine's MariaDB; the pretable built from our hits and the one read from those tables must be the
same multiset of rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from analytics_ingest.config import load_settings
from analytics_ingest.engine import open_ledger
from analytics_ingest.pretable import build_pretable, read_pretable_tsv
from analytics_ingest.pretable.matomo_rules import matomo_action, pretable_action_name
from analytics_ingest.sites import load_sites
from analytics_ingest.weblogs import pipeline
from analytics_ingest_tests.db_fixtures import _mariadb_url
from analytics_ingest_tests.helpers import TOKEN, make_log

DAY = dt.date(2024, 3, 14)
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/122.0.6261.94 Safari/537.36")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.3 Safari/605.1.15")
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 "
        "Safari/537.36 Edg/122.0.2365.80")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.3 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/122.0.6261.64 Mobile Safari/537.36")
FACEBOOK_APP = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                "Mobile/15E148 [FBAN/FBIOS;FBAV/446.0.0.35.108;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.2]")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"  # our classifier's
DD_ONLY_BOT = "Mozilla/5.0 (compatible; Qwantify/2.4w; +https://www.qwant.com/)/2.4w"  # DeviceDetector's only

LINES = [
    ("81.2.69.160", "00:01:00", "/products/42?utm_source=news&utm_medium=mail&color=red", CHROME),
    ("81.2.69.160", "00:02:00", "/products/42?gclid=abc123&fbclid=xyz", CHROME),
    ("81.2.69.161", "00:03:00", "/search?q=open+data&page=2", FIREFOX),
    ("81.2.69.161", "00:04:00", "/?s=ni%C3%B1o", FIREFOX),
    ("81.2.69.162", "00:05:00", "/files/report-2023.pdf", SAFARI),
    ("81.2.69.162", "00:06:00", "/files/report-2023.pdf?utm_campaign=x", SAFARI),
    ("2001:db8::7", "00:07:00", "/news/release.html?utm_content=a&b=1&b=2", EDGE),
    ("81.2.69.163", "00:08:00", "/blog/2022/08/post;jsessionid=XYZ", IPHONE),
    ("81.2.69.164", "00:09:00", "/books/guide.epub", ANDROID),
    ("81.2.69.164", "00:10:00", "/products/7?keyword=&x=%3Cb%3E", ANDROID),
    ("81.2.69.165", "00:11:00", "/data/set.csv?a=1&b=%22q%22", FACEBOOK_APP),
    ("66.249.66.1", "00:12:00", "/products/1", GOOGLEBOT),
    ("81.2.69.166", "00:13:00", "/products/2", DD_ONLY_BOT),
]


def _feature_log(path: Path) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for ip, time, target, agent in LINES:
            fh.write(f'{ip} - - [14/Mar/2024:{time} +0000] "GET {target} HTTP/1.1" 200 512 "-" "{agent}"\n')


def _site(tmp_path: Path, logs: Path, source: str):
    path = tmp_path / f"sites-{source}.yaml"
    path.write_text(
        "sites:\n  - id: 1\n    key: web\n    name: Web\n    main_url: https://www.example.org\n"
        f"    log_dir: {logs}\n    file_pattern: 'access*'\n    timezone: UTC\n    start_date: 2024-03-01\n"
        f"    pretable: {{source: {source}, wait_for_neighbours: false}}\n")
    return load_sites(path)[0]


@pytest.fixture
def matomo_mysql():
    gen = _mariadb_url()
    url = next(gen)
    yield url
    for _ in gen:
        pass


def test_both_sources_give_identical_rows(tmp_path, fake, matomo_mysql):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / f"access.log.{DAY}"
    make_log(log, 2500, seed=15, date=DAY.isoformat(), tz="+0000")
    _feature_log(log)
    hits_site, db_site = _site(tmp_path, logs, "hits"), _site(tmp_path, logs, "matomo_db")
    settings = load_settings(home=tmp_path / "home", matomo_url=fake.url, matomo_token=TOKEN,
                             environ={"MATOMO_DB_URL": matomo_mysql})
    with open_ledger(settings) as ledger:
        pipeline.queue_day(ledger, hits_site, DAY)
        assert pipeline.import_day(settings, ledger, hits_site, DAY).status == "loaded"
    written = fake.write_log_tables(matomo_mysql, idsite=1)
    assert written["log_link_visit_action"] > 1500
    with open_ledger(settings) as ledger:
        from_hits = build_pretable(settings, ledger, hits_site, DAY)
        from_db = build_pretable(settings, ledger, db_site, DAY)
    hits_rows = Counter(read_pretable_tsv(from_hits.tsv))
    db_rows = Counter(read_pretable_tsv(from_db.tsv))
    assert hits_rows - db_rows == Counter() and db_rows - hits_rows == Counter()
    assert from_hits.rows == from_db.rows == sum(hits_rows.values())

    names = {r[6] for r in hits_rows}
    browsers = {r[1] for r in hits_rows}
    assert {"Chrome", "Firefox", "Safari", "Microsoft Edge", "Mobile Safari", "Chrome Mobile", "Facebook"} <= browsers
    assert all(not r[1] or len(r[1]) > 2 for r in hits_rows)  # names, never Matomo's codes
    ours = {r[6]: r for r in hits_rows if r[0] >= "2024-03-14 00:01:00" and r[0] <= "2024-03-14 00:13:00"
            and r[3].startswith(("81.2.69.16", "2001:db8::7", "66.249."))}
    assert ours["example.org/products/42?color=red"][1:3] == ("Chrome", "122.0")
    assert "example.org/products/42" in ours  # gclid and fbclid stripped, nothing left
    assert "search:open data" in ours and "search:niño" in ours  # site searches, by keyword
    assert "example.org/files/report-2023.pdf" in ours  # a download: no https://www.
    assert "example.org/files/report-2023.pdf?utm_campaign=x" in ours  # Matomo keeps download URLs whole
    assert "example.org/news/release.html?utm_content=a&b=2" in ours  # utm_content stays; last b wins
    assert "example.org/blog/2022/08/post" in ours  # matrix parameter jsessionid stripped
    assert 'example.org/data/set.csv?a=1&b=%22q%22' in ours
    assert not any(n.startswith("example.org/products/1") and n == "example.org/products/1" for n in ours)
    assert not any(r[3] in ("66.249.66.1", "81.2.69.166") for r in hits_rows)  # both kinds of bots out
    assert any(n.startswith("search:") for n in names) and any(".pdf" in n for n in names)


def test_matomo_rules_on_urls():
    def name(url, download=False):
        return pretable_action_name(*matomo_action(url, download=download))

    assert name("https://www.Example.ORG/a?utm_source=x&ID=1&gclid=2&FBCLID=3") == "example.org/a?ID=1"
    assert name("http://example.org/a?") == "example.org/a"
    assert name("https://example.org/a?x[]=1&x[]=2&flag") == "example.org/a?x[]=1&x[]=2&flag"
    assert name("https://example.org/a?q=%E6%9D%B1%E4%BA%AC+hotel") == "search:東京 hotel"
    assert name("https://example.org/a?q=0") == "example.org/a?q=0"  # PHP's empty("0"): not a search
    assert name("https://WWW.example.org/f.pdf?a=1&b=2", download=True) == "example.org/f.pdf?a=1&b=2"
    assert name("https://example.org/a?x=%3C&y=<b>") == "example.org/a?x=%3C&y=<b>"
    assert name("https://example.org/p;a=1;b=2") == "example.org/p?a=1&b=2"


SETTINGS_LINES = [
    ("81.2.69.170", "00:20:00", "/search?q=open+data", CHROME),  # no site search on this site
    ("81.2.69.170", "00:21:00", "/catalogue?find=maps&lang=en", CHROME),  # its own keyword parameter
    ("81.2.69.171", "00:22:00", "/item/9?SessionKey=abc&view=full&Track=1", FIREFOX),  # its own excluded ones
    ("81.2.69.171", "00:23:00", "/item/9?utm_source=x&view=full", FIREFOX),  # the built-in ones still go
]


@pytest.mark.parametrize("search_on", [False, True])
def test_a_sites_own_url_settings_give_identical_rows(tmp_path, matomo_mysql, search_on):
    """Site search off (or on with the site's own keyword parameter), excluded parameters of the
    site and of the whole Matomo: the hits source reads them from Matomo and stores the same
    actions as the tracker did."""
    from analytics_ingest_tests.fake_matomo import FakeMatomo

    site_settings = {"name": "Web", "main_url": "https://www.example.org", "timezone": "UTC",
                     "sitesearch": "1" if search_on else "0", "excluded_parameters": "sessionkey",
                     "sitesearch_keyword_parameters": "find" if search_on else ""}
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / f"access.log.{DAY}"
    make_log(log, 600, seed=16, date=DAY.isoformat(), tz="+0000")
    with open(log, "a", encoding="utf-8") as fh:
        for ip, time, target, agent in SETTINGS_LINES:
            fh.write(f'{ip} - - [14/Mar/2024:{time} +0000] "GET {target} HTTP/1.1" 200 512 "-" "{agent}"\n')
    hits_site, db_site = _site(tmp_path, logs, "hits"), _site(tmp_path, logs, "matomo_db")
    with FakeMatomo(token=TOKEN, sites={1: site_settings}, excluded_parameters_global="track") as fake:
        settings = load_settings(home=tmp_path / "home", matomo_url=fake.url, matomo_token=TOKEN,
                                 environ={"MATOMO_DB_URL": matomo_mysql})
        with open_ledger(settings) as ledger:
            pipeline.queue_day(ledger, hits_site, DAY)
            assert pipeline.import_day(settings, ledger, hits_site, DAY).status == "loaded"
        fake.write_log_tables(matomo_mysql, idsite=1)
        with open_ledger(settings) as ledger:
            from_hits = build_pretable(settings, ledger, hits_site, DAY)
            from_db = build_pretable(settings, ledger, db_site, DAY)
        assert fake.errors == []
    hits_rows = Counter(read_pretable_tsv(from_hits.tsv))
    db_rows = Counter(read_pretable_tsv(from_db.tsv))
    assert hits_rows - db_rows == Counter() and db_rows - hits_rows == Counter()
    assert from_hits.url_rules == "Matomo site 1's settings" and from_hits.unread == []
    ours = {r[6] for r in hits_rows if r[3] in ("81.2.69.170", "81.2.69.171")}
    if search_on:  # only the site's keyword parameter makes a site search; q is a parameter like any
        assert ours == {"example.org/search?q=open+data", "search:maps", "example.org/item/9?view=full"}
    else:
        assert ours == {"example.org/search?q=open+data", "example.org/catalogue?find=maps&lang=en",
                        "example.org/item/9?view=full"}
        assert not any(r[6].startswith("search:") for r in hits_rows)


def test_url_settings_a_token_cannot_read_keep_their_defaults_and_are_named():
    from analytics_ingest.matomo.api import MatomoApi
    from analytics_ingest.pretable.matomo_rules import SITE_SEARCH_KEYWORD_PARAMETERS
    from analytics_ingest.pretable.site_rules import url_rules_from_api
    from analytics_ingest_tests.fake_matomo import FakeMatomo

    sites = {1: {"name": "Web", "main_url": "https://example.org", "excluded_parameters": "Token"}}
    with FakeMatomo(token=TOKEN, sites=sites, superuser=False, search_keyword_parameters_global="term") as fake:
        rules, unread = url_rules_from_api(MatomoApi(fake.url, TOKEN), 1)
    assert rules.site_search and rules.keyword_parameters == SITE_SEARCH_KEYWORD_PARAMETERS  # not "term": unread
    assert "token" in rules.excluded and "utm_source" in rules.excluded
    assert len(unread) == 1 and unread[0].startswith("the global site search keyword parameters (")
    with FakeMatomo(token=TOKEN, sites=sites, search_keyword_parameters_global="term") as fake:
        rules, unread = url_rules_from_api(MatomoApi(fake.url, TOKEN), 1)
    assert rules.keyword_parameters == ("term",) and unread == []
