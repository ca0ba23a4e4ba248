"""``reports_match_ledger`` (``archiving.check_reports``): Matomo's reports against what the ledger
delivered, less what Matomo's tracker excluded while answering "tracked", and the next step named
when they still disagree.

Real parts: generated access logs imported by the engine into the fake Matomo, whose opt-in visit
exclusion models Matomo 4.12.3's ``VisitExcluded`` (bot IP ranges, excluded IPs and user agents) and
whose archive model serves reports only after archiving.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from analytics_ingest import archiving
from analytics_ingest.config import load_settings
from analytics_ingest.engine import open_ledger
from analytics_ingest.matomo.api import MatomoApi
from analytics_ingest.matomo.archive import RunnerResult
from analytics_ingest.matomo.exclusions import MatomoExclusions, ip_range, php_regex
from analytics_ingest.matomo.retry import RetryPolicy
from analytics_ingest.sites import load_sites
from analytics_ingest.weblogs import pipeline
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN

DAY = dt.date(2024, 3, 14)
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
          "Safari/537.36")
FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02, read_timeout=1.0, settle_wait=0.1,
                   settle_interval=0.05)
# Addresses in Matomo's built-in bot ranges (Google 66.249.80.0/20, Bing 157.54.0.0/15, MSN 207.46.0.0/16)
BOT_RANGE_IPS = ["66.249.80.10", "66.249.91.7", "157.55.39.1", "207.46.13.5"]


def line(ip: str, minute: int, path: str, agent: str = CHROME) -> str:
    return (f'{ip} - - [14/Mar/2024:10:{minute % 60:02d}:{minute // 60:02d} +0000] "GET {path} HTTP/1.1" 200 512 '
            f'"-" "{agent}"\n')


def human_lines(n: int, start: int = 0) -> list[str]:
    """n human hits (every fifth a PDF download) from 81.2.69.x."""
    return [line(f"81.2.69.{i % 250 + 1}", i, f"/files/{i}.pdf" if i % 5 == 4 else f"/page/{i}")
            for i in range(start, start + n)]


class InProcessArchiver:
    """A runner that asks the fake Matomo to archive, as core:archive would."""

    name = "local"

    def __init__(self, fake: FakeMatomo) -> None:
        self.fake = fake

    def run(self, idsite, first, last) -> RunnerResult:
        record = self.fake.archive(idsite, first, last)
        return RunnerResult(runner="local", command="fake core:archive", exit_status=0,
                            output_tail=f"recomputed {record['recomputed']}", seconds=0.0)


def setup(tmp_path: Path, fake: FakeMatomo, *, classify: str = "", batch: str = ""):
    logs = tmp_path / "logs"
    logs.mkdir(parents=True)
    sites = tmp_path / "sites.yaml"
    sites.write_text(
        "sites:\n  - id: 1\n    key: web\n    name: Web\n    main_url: https://example.org\n"
        f"    log_dir: {logs}\n    file_pattern: 'access*'\n    timezone: UTC\n    start_date: 2024-03-01\n"
        + (f"    classify: {classify}\n" if classify else "") + (batch and f"    {batch}\n"))
    site = load_sites(sites)[0]
    settings = load_settings(home=tmp_path / "home", matomo_url=fake.url, matomo_token=TOKEN, environ={})
    return site, settings, logs / f"access.log.{DAY}"


def import_and_archive(settings, site, fake, *, archive: bool = True, policy=None) -> str:
    with open_ledger(settings) as ledger:
        pipeline.queue_day(ledger, site, DAY)
        status = pipeline.import_day(settings, ledger, site, DAY, policy=policy).status
        if archive:
            assert archiving.archive_day(settings, ledger, site, DAY, runner=InProcessArchiver(fake)).archived
    return status


def check(settings, site):
    with open_ledger(settings) as ledger:
        return archiving.check_reports(settings, ledger, site, DAY)


@pytest.mark.parametrize("enable_bots", [False, True], ids=["bots-excluded", "bots=1-sent"])
def test_hits_matomo_excludes_are_subtracted_and_the_check_passes(tmp_path, enable_bots):
    # Matomo tries the global agents first, then the site's; a regex entry decides for the rest.
    sites = {1: dict(SITES[1], excluded_ips="91.198.174.0/24, 5.9.1.7",
                     excluded_user_agents="/^Mozilla\\/4\\.0 \\(compatible; Checker/i")}
    with FakeMatomo(token=TOKEN, sites=sites, archiving=True, bot_ip_ranges=True,
                    excluded_user_agents_global="Uptime-Probe") as fake:
        site, settings, log = setup(tmp_path, fake, classify="{enable_bots: true}" if enable_bots else "")
        lines = human_lines(120)
        lines += [line(ip, 200 + i, f"/page/b{i}") for i, ip in enumerate(BOT_RANGE_IPS * 3)]  # 12 hits
        lines += [line(ip, 300 + i, "/files/x.pdf") for i, ip in enumerate(BOT_RANGE_IPS[:2])]  # 2 downloads
        lines += [line("91.198.174.40", 310, "/page/ex1"), line("5.9.1.7", 311, "/page/ex2")]
        lines += [line("81.2.69.9", 312, "/page/probe", "Uptime-Probe/2.0 (+https://status.example)")]
        lines += [line("81.2.69.9", 313, "/page/chk", "Mozilla/4.0 (compatible; Checker 1.1)")]
        log.write_text("".join(lines))
        assert import_and_archive(settings, site, fake) == "loaded"
        outcome = check(settings, site)
        assert fake.errors == []

    dropped = Counter(e["reason"] for e in fake.excluded)  # what the fake Matomo did, independently
    bot_range_hits = 0 if enable_bots else 14
    assert dropped == Counter({"bot_ip_range": bot_range_hits, "excluded_ip": 2, "excluded_user_agent": 2}) - Counter()
    assert outcome.checked and outcome.passed, outcome.description
    assert outcome.delivered == {"nb_pageviews": 120 - 24 + 12 + 4, "nb_downloads": 24 + 2}
    assert {r: n for r, n in outcome.excluded.items() if n} == dict(dropped)
    assert outcome.excluded_total == sum(dropped.values()) > 0
    assert outcome.expected == outcome.reported
    assert sum(outcome.expected.values()) == sum(outcome.delivered.values()) - outcome.excluded_total
    assert f"{outcome.excluded_total} of 138 delivered hits excluded by Matomo" in outcome.description
    assert "\n" not in outcome.description and outcome.next_step == ""


def test_a_stale_archive_says_to_rerun_matomo_archive(tmp_path):
    with FakeMatomo(token=TOKEN, sites=SITES, archiving=True) as fake:
        site, settings, log = setup(tmp_path, fake)
        log.write_text("".join(human_lines(40)))
        assert import_and_archive(settings, site, fake) == "loaded"
        assert check(settings, site).passed
        with open(log, "a") as out:  # rsync brings more lines; they are imported, not archived yet
            out.write("".join(human_lines(10, start=40)))
        assert import_and_archive(settings, site, fake, archive=False) == "loaded"
        outcome = check(settings, site)
    assert outcome.checked and not outcome.passed
    assert "32 of 40 expected pageviews (8 missing)" in outcome.description
    assert "8 of 10 expected downloads (2 missing)" in outcome.description
    assert outcome.next_step.endswith(f"re-run matomo_archive for {DAY}")
    assert "predate the last delivery" in outcome.next_step and "import" not in outcome.next_step
    assert outcome.description.endswith(outcome.next_step) and "\n" not in outcome.description


def test_hits_the_ledger_has_not_delivered_say_to_run_the_import(tmp_path):
    with FakeMatomo(token=TOKEN, sites=SITES, archiving=True) as fake:
        site, settings, log = setup(tmp_path, fake, batch="batch_size: 10\n    lanes: 1")
        log.write_text("".join(human_lines(60)))
        fake.inject_fn(lambda n, reqs: None if n < 3 else "500_before_commit")  # Matomo goes down mid-import
        assert import_and_archive(settings, site, fake, policy=FAST) == "partial"
        stored = len(fake.hits(1))
        outcome = check(settings, site)
    assert 0 < stored < 60
    assert outcome.checked and not outcome.passed
    assert sum(outcome.reported.values()) == stored
    assert f"run matomo_import for {DAY}, then matomo_archive" in outcome.next_step
    assert "not loaded" in outcome.next_step and str(log) in outcome.next_step
    assert outcome.description.endswith(outcome.next_step)


def test_a_fresh_archive_that_still_lacks_hits_says_what_to_look_at(tmp_path):
    with FakeMatomo(token=TOKEN, sites=SITES, archiving=True) as fake:
        site, settings, log = setup(tmp_path, fake)
        log.write_text("".join(human_lines(30)))
        fake.archive_fails = True  # the archiver answers success and recomputes nothing
        assert import_and_archive(settings, site, fake) == "loaded"
        outcome = check(settings, site)
    assert not outcome.passed and "0 of 24 expected pageviews (24 missing)" in outcome.description
    assert "ran after the last delivery" in outcome.next_step and "core:archive by hand" in outcome.next_step
    assert "run the import" not in outcome.description and "matomo_import" not in outcome.next_step


def test_device_detector_bots_matomo_drops_are_a_tolerance_and_named(tmp_path):
    # Matomo drops agents its DeviceDetector knows as bots (the fake drops the ones a test names);
    # neither is a bot for import_logs' rules, so both were delivered without bots=1.
    bots = ["Mozilla/5.0 (compatible; Qwantify/2.4w; +https://www.qwant.com/)/2.4w",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"]
    lines = human_lines(20)
    lines[3] = line("81.2.69.77", 3, "/page/r1", bots[0])
    lines[6] = line("81.2.69.78", 6, "/page/r2", bots[1])
    with FakeMatomo(token=TOKEN, sites=SITES, archiving=True,
                    bot_user_agents=("Qwantify", "facebookexternalhit")) as fake:
        site, settings, log = setup(tmp_path, fake)
        log.write_text("".join(lines))
        assert import_and_archive(settings, site, fake) == "loaded"
        outcome = check(settings, site)
        assert len(fake.excluded) == 2
    assert outcome.passed, outcome.description
    assert outcome.bot_agents == 2 and outcome.reported["nb_pageviews"] == outcome.expected["nb_pageviews"] - 2
    assert "except 2 pageviews of the 2 with a user agent Matomo's DeviceDetector calls a bot" in outcome.description
    assert "device_detector 6.5.1" in outcome.bot_list


def test_a_drop_beyond_device_detector_bots_is_not_forgiven(tmp_path):
    # okhttp is no DeviceDetector bot: a Matomo that drops it (exclude_requests, say) is named, not passed;
    # and a silent archive failure is not hidden by the bots of the day.
    lines = human_lines(20)
    lines[3] = line("81.2.69.77", 3, "/page/r1", "facebookexternalhit/1.1")
    lines[6] = line("81.2.69.78", 6, "/page/r2", "okhttp/4.12.0")
    with FakeMatomo(token=TOKEN, sites=SITES, archiving=True, bot_user_agents=("facebookexternalhit", "okhttp")) as fake:
        site, settings, log = setup(tmp_path, fake)
        log.write_text("".join(lines))
        assert import_and_archive(settings, site, fake) == "loaded"
        outcome = check(settings, site)
        assert not outcome.passed and "(2 missing)" in outcome.description and outcome.bot_agents == 1
        assert "more than the 1 delivered hits with a DeviceDetector bot agent" in outcome.next_step


def test_a_silent_archive_failure_is_not_hidden_by_the_days_bots(tmp_path):
    lines = human_lines(20)
    lines[3] = line("81.2.69.77", 3, "/page/r1", "facebookexternalhit/1.1")
    with FakeMatomo(token=TOKEN, sites=SITES, archiving=True, bot_user_agents=("facebookexternalhit",)) as fake:
        site, settings, log = setup(tmp_path, fake)
        log.write_text("".join(lines))
        fake.archive_fails = True  # the archiver answers success and recomputes nothing
        assert import_and_archive(settings, site, fake) == "loaded"
        outcome = check(settings, site)
    assert outcome.bot_agents == 1 and not outcome.passed
    assert "0 of 16 expected pageviews (16 missing)" in outcome.description


def test_global_exclusions_need_an_admin_token_and_the_check_says_so(tmp_path):
    with FakeMatomo(token=TOKEN, sites=SITES, superuser=False) as fake:
        exclusions = MatomoExclusions.from_api(MatomoApi(fake.url, TOKEN), 1)
    assert exclusions.excluded_ips == () and len(exclusions.unread) == 2
    assert "global excluded IPs" in exclusions.unread[0] and "'admin' access" in exclusions.unread[0]


def test_global_lists_never_set_exclude_nothing(tmp_path):
    # A fresh Matomo 4.12.3 answers {"value": false} for both global lists (checked on the real
    # server, docs/real_matomo_checks.md). Read as the text "False", every agent holding "false"
    # was counted as excluded, and an exact site then failed with "counted twice".
    agent = CHROME + " WebView/1 (isFalse=1)"
    with FakeMatomo(token=TOKEN, sites=SITES, archiving=True) as fake:
        api = MatomoApi(fake.url, TOKEN)
        assert api.call("SitesManager.getExcludedIpsGlobal") == {"value": False}
        assert api.call("SitesManager.getExcludedUserAgentsGlobal") == {"value": False}
        exclusions = MatomoExclusions.from_api(api, 1)
        site, settings, log = setup(tmp_path, fake)
        log.write_text("".join(human_lines(10) + [line("81.2.69.50", 30 + i, f"/page/f{i}", agent) for i in range(5)]))
        assert import_and_archive(settings, site, fake) == "loaded"
        outcome = check(settings, site)
    assert exclusions.excluded_ips == () and exclusions.excluded_user_agents == () and exclusions.unread == []
    assert exclusions.reason("81.2.69.50", agent, bots=False) is None
    assert fake.excluded == [] and outcome.excluded_total == 0
    assert outcome.passed, outcome.description
    assert outcome.reported == outcome.expected == {"nb_pageviews": 13, "nb_downloads": 2}


def test_matomo_ip_range_and_user_agent_rules():
    assert str(ip_range("1.2.*.*")) == "1.2.0.0/16" and str(ip_range(" 10.0.0.1 ")) == "10.0.0.1/32"
    assert str(ip_range("72.30.198.0/20")) == "72.30.192.0/20" and str(ip_range("2001:db8::/32")) == "2001:db8::/32"
    assert [ip_range(t) for t in ("1.2*", "*.1.2.3", "1.2.3.4/40", "x", "")] == [None] * 5
    assert php_regex("/bot/i").search("SomeBOT") and php_regex("#^curl#").search("curl/8")
    assert [php_regex(t) for t in ("curl", "/open", "/a/U")] == [None, None, None]
    rules = MatomoExclusions(excluded_ips=(ip_range("10.0.0.0/8"),), excluded_user_agents=("/^Mozilla\\/4/", "wget"))
    assert rules.reason("66.249.80.10", CHROME, bots=False) == "bot_ip_range"
    assert rules.reason("66.249.80.10", CHROME, bots=True) is None  # bots=1: isNonHumanBot is skipped
    assert rules.reason("10.1.2.3", CHROME, bots=True) == "excluded_ip"
    assert rules.reason("8.8.8.8", "Mozilla/4.0 (compatible)", bots=False) == "excluded_user_agent"
    # Matomo's loop returns the first valid regex's answer: "wget" after it is never tried
    assert rules.reason("8.8.8.8", "Wget/1.21", bots=False) is None
    assert MatomoExclusions(excluded_user_agents=("wget", "/^x/")).reason("8.8.8.8", "Wget/1.21", False) \
        == "excluded_user_agent"
    assert rules.reason("::ffff:66.249.80.10", CHROME, bots=False) is None  # 16 bytes never match a v4 range
