"""COUNTER robots and machines (CoP R5.1 §7.8) on real-world user agents, as they reach
``counter_metrics``: through the pretable (a DeviceDetector bot is not in it, as Matomo drops it;
otherwise the browser column holds Matomo's name and version of the agent), and as raw agents in
that column.

The lists are the ``counter-robots`` package's; the expectations below are what COUNTER says each
agent is or common browsers (human), never read back from the code: "machine" when a pattern of
the machine list matches (34 of its 35 patterns are robot patterns too, so it is checked first),
"robot" when only the robot list does.
"""

from __future__ import annotations

import importlib.metadata
from importlib import resources

import pytest

from analytics_ingest.counter import SCIELO_ITEMS, compute, load_rules
from analytics_ingest.counter import metrics as counter_metrics
from analytics_ingest.counter.metrics import MACHINES, ROBOTS, ROBOTS_LIST, AgentClassifier
from analytics_ingest.errors import ConfigError
from analytics_ingest.pretable.matomo_rules import MatomoBrowsers, pretable_browser

SCIELO = load_rules(SCIELO_ITEMS)
ARTICLE = "www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/?lang=pt"

ROBOT_AGENTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.216 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
    "(compatible; Bytespider; spider-feedback@bytedance.com)",
    "CCBot/2.0 (https://commoncrawl.org/faq/)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.109 "
    "Safari/537.36",
    "Mozilla/5.0 (compatible; Applebot/0.1; +http://www.apple.com/go/applebot)",
    "Mozilla/5.0 (compatible; archive.org_bot +http://archive.org/details/archive.org_bot)",
    "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",
    "Mozilla/5.0 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
    # the kinds the former 21-pattern excerpt counted as human
    "Mozilla/5.0 (compatible; Qwantify/2.4w; +https://www.qwant.com/)/2.4w",
    "Turnitin (https://bit.ly/2UvnfoQ)",
    "okhttp/4.12.0",
    "WhatsApp/2.23.20.0",
    "Mozilla/5.0 (compatible; Google-Site-Verification/1.0)",
    "Pcore-HTTP/v0.25.0",
    "BUbiNG (+http://law.di.unimi.it/BUbiNG.html#wc)",
]
MACHINE_AGENTS = [
    "curl/8.4.0",
    "Wget/1.21.3",
    "python-requests/2.31.0",
    "Java/17.0.2",
    "Apache-HttpClient/4.5.14 (Java/17.0.8)",
    "libwww-perl/6.72",
    # the kinds the former excerpt counted as human
    "EBSCO EJS Content Server",
    "aria2/1.36.0",
    "PHP/8.2.12",
    "Microsoft Office Existence Discovery",
    "WordPress/6.4.2; https://example.org",
    "lwp-trivial/1.41",
    "gvfs/1.50.2",
    "Mozilla/5.0 (compatible; Indy Library)",
]
HUMAN_AGENTS = [
    # desktop: Chrome (Windows, macOS, Linux, ChromeOS), Firefox, Safari, Edge, Opera, IE 11
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36 OPR/106.0.0.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    # mobile: Chrome, Firefox, Safari, Edge, Samsung Internet, in-app and search-engine browsers
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 "
    "Mobile/15E148 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile "
    "Safari/537.36 EdgA/120.0.2210.115",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 "
    "Chrome/115.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
    "[FBAN/FBIOS;FBAV/446.0.0.35.108;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.2;FBSS/3;FBID/phone;FBLC/en_US]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "GSA/300.0.598994205 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 "
    "YaBrowser/23.11.0.0 Safari/537.36",
]
EXPECTED = ([(a, "robot") for a in ROBOT_AGENTS] + [(a, "machine") for a in MACHINE_AGENTS]
            + [(a, None) for a in HUMAN_AGENTS])


def _row(agent_name, version, ip="192.0.2.10"):
    return ("2024-03-14 10:00:00", agent_name, version, ip, None, None, ARTICLE)


def _package_patterns(name: str) -> list[str]:
    text = resources.files("counter_robots").joinpath("data", name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def test_the_sample_is_large_and_covers_every_kind():
    assert len(EXPECTED) >= 23
    assert len(ROBOT_AGENTS) >= 10 and len(MACHINE_AGENTS) >= 10 and len(HUMAN_AGENTS) >= 12


# What Matomo records for these agents is no COUNTER robot or machine: Matomo names them
# "UNK" (browserName NULL) or a library name COUNTER's patterns do not meet ("Perl", "Microsoft
# Office"). Both pretable sources hold Matomo's row, so they count as human (checked on the real
# Matomo 4.12.3: docs/real_matomo_checks.md). PHP/8.2 is UNK in Matomo 4.12.3 but "PHP" in newer
# DeviceDetector releases, which Matomo shows as "Phantom Browser" (getBrowserName reads the first two
# letters as a code).
HUMAN_THROUGH_MATOMO = {"Pcore-HTTP/v0.25.0", "libwww-perl/6.72", "EBSCO EJS Content Server", "PHP/8.2.12",
                        "Microsoft Office Existence Discovery", "lwp-trivial/1.41",
                        "Mozilla/5.0 (compatible; Indy Library)"}
_MATOMO = MatomoBrowsers()


def pretable_browser_of(agent: str) -> tuple[str | None, str | None] | None:
    """The pretable's (browserName, browserVersion) for a delivered hit with ``agent``; None when
    the hit is not in the pretable (a DeviceDetector bot: Matomo drops it)."""
    if _MATOMO.is_bot(agent):
        return None
    return pretable_browser(*_MATOMO(agent))


@pytest.mark.parametrize("agent, kind", EXPECTED, ids=[a[:50] for a, _ in EXPECTED])
def test_agents_through_the_pretable(agent, kind):
    browser = pretable_browser_of(agent)
    if browser is None:  # not in the pretable at all: never counted
        assert kind is not None, f"a human agent is dropped as a bot: {agent}"
        return
    result = compute([_row(*browser)], SCIELO)
    if agent in HUMAN_THROUGH_MATOMO:
        kind = None
    assert (result.stats.rows_robot, result.stats.rows_machine) == (
        (0, 0) if kind is None else (1, 1 if kind == "machine" else 0)), browser
    assert len(result.items) == (1 if kind is None else 0)


def test_most_robots_and_machines_stay_out_of_the_counts_through_the_pretable():
    caught = [a for a, kind in EXPECTED if kind is not None and (
        pretable_browser_of(a) is None or compute([_row(*pretable_browser_of(a))], SCIELO).stats.rows_robot)]
    robots_and_machines = [a for a, kind in EXPECTED if kind is not None]
    assert len(robots_and_machines) - len(caught) == len(HUMAN_THROUGH_MATOMO)  # and no more


@pytest.mark.parametrize("agent, kind", EXPECTED, ids=[a[:50] for a, _ in EXPECTED])
def test_raw_agents_in_the_browser_column(agent, kind):
    # an extractor that writes the user agent itself as browserName (no version)
    assert AgentClassifier()(agent) == kind
    assert compute([_row(agent, None)], SCIELO).stats.rows_robot == (0 if kind is None else 1)


@pytest.mark.parametrize("name, version", [
    ("Firefox", ""), ("Unknown", ""), ("Yandex Browser", "23.11"), ("Sailfish Browser", "4.2"),
    ("Sogou Explorer", "1.0"), ("Baidu Browser", "8.7"), ("Google", "300.0"), ("CH", "120.0"), ("FF", ""),
])
def test_human_browser_names_that_a_pattern_matches_stay_human(name, version):
    assert AgentClassifier()(name, version) is None
    assert compute([_row(name, version)], SCIELO).stats.rows_robot == 0


@pytest.mark.parametrize("name, version, kind", [
    ("firefox", "", "robot"),  # a bare lower-case "firefox" agent: COUNTER's ^firefox$
    ("unknown", "", "machine"),  # COUNTER's ^unknown$, unlike Matomo's parsed "Unknown"
    ("YandexBot", "3.0", "robot"),
    ("Headless Chrome", "120.0", "robot"),  # Matomo's name of HeadlessChrome
    ("curl", "8.4", "machine"),  # Matomo's name: curl/8.4 meets COUNTER's curl\/
    ("Java", "17.0", "machine"),
])
def test_parsed_names_of_robots_and_machines(name, version, kind):
    assert AgentClassifier()(name, version) == kind


def test_robots_list_names_the_package_version_and_counts():
    version = importlib.metadata.version("counter-robots")
    robots, machines = _package_patterns("robot.txt"), _package_patterns("machine.txt")
    assert robots and machines
    assert ROBOTS == tuple(robots) and MACHINES == tuple(machines)
    assert ROBOTS_LIST == f"COUNTER-Robots {version} ({len(robots)} robot + {len(machines)} machine patterns)"
    assert compute([], SCIELO).robots_list == ROBOTS_LIST
    assert compute([], SCIELO, extra_robots=["zotero"]).robots_list == ROBOTS_LIST + " + 1 extra robot pattern"
    assert compute([], SCIELO, robots=["bot"], machines=()).robots_list == "custom lists (1 robot + 0 machine patterns)"


def test_an_empty_or_missing_list_is_an_error_not_a_silent_zero(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "robot.txt").write_text("\n\n")
    monkeypatch.setattr(counter_metrics.resources, "files", lambda package: tmp_path)
    with pytest.raises(ConfigError, match=r"robot\.txt .* is empty"):
        counter_metrics._counter_list("robot.txt")
    with pytest.raises(ConfigError, match=r"machine\.txt cannot be read"):
        counter_metrics._counter_list("machine.txt")
    monkeypatch.undo()
    # and the defaults in use do exclude a robot: an empty default list would count it as a human
    assert compute([_row("Googlebot", "2.1")], SCIELO).stats.rows_robot == 1


def test_each_distinct_agent_is_matched_once(monkeypatch):
    calls = []
    real = AgentClassifier.agent
    monkeypatch.setattr(AgentClassifier, "agent", lambda self, text: calls.append(text) or real(self, text))
    agents = [(a, None) for a in ROBOT_AGENTS + HUMAN_AGENTS]  # raw agents in the browser column
    rows = [_row(*agents[i % len(agents)], ip=f"192.0.2.{i % 200}") for i in range(20_000)]
    stats = compute(rows, SCIELO).stats
    assert stats.rows_robot == sum(1 for i in range(20_000) if i % len(agents) < len(ROBOT_AGENTS))
    assert len(calls) <= 3 * len(set(agents))  # a name, name/version, and name/version without spaces
