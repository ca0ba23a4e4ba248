"""Classification: import_logs.py's defaults, check order and options."""

from __future__ import annotations

import pytest

from analytics_ingest.hits import Hit
from analytics_ingest.vocabulary import BOTS, DOWNLOADS, FILTERED, HTTP_ERRORS, HTTP_REDIRECTS, PAGES, STATIC
from analytics_ingest.weblogs.classify import Classifier, ClassifyOptions

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def hit(path="/", status=200, agent=BROWSER, host=""):
    return Hit(1, "192.0.2.1", "2024-10-10 10:00:00", "GET", path, status, 10, host, "", agent, "")


def classify(options=ClassifyOptions(), **fields):
    return Classifier(options).classify(hit(**fields))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", PAGES),
        ("/article/view?id=5", PAGES),
        ("/docs/paper.PDF", DOWNLOADS),
        ("/data.zip?v=2", DOWNLOADS),
        ("/style.css", STATIC),
        ("/img/logo.png?v=3", STATIC),
        ("/robots.txt", STATIC),
        ("/sitemap.xml", STATIC),  # both a download and a static extension: static wins
        ("/notes.txt", DOWNLOADS),
        ("/a.d/page", PAGES),  # the "extension" is "d/page"
        ("/caf%C3%A9/r%C3%A9sum%C3%A9.epub", DOWNLOADS),
    ],
)
def test_default_categories(path, expected):
    assert classify(path=path) == expected


def test_http_error_is_checked_before_static():
    assert classify(path="/style.css", status=404) == HTTP_ERRORS
    assert classify(path="/paper.pdf", status=500) == HTTP_ERRORS


def test_static_is_checked_before_user_agent():
    assert classify(path="/robots.txt", agent=GOOGLEBOT) == STATIC
    assert classify(path="/page", agent=GOOGLEBOT) == BOTS


def test_redirects_except_304():
    assert classify(status=301) == HTTP_REDIRECTS
    assert classify(status=302, agent=GOOGLEBOT) == HTTP_REDIRECTS
    assert classify(status=304) == PAGES


@pytest.mark.parametrize(
    "agent",
    ["curl/8.0", "Wget spider", "Java/1.8.0", "Zabbix", "python FEEDfetcher", "YandexBot/3.0", "ia_archiver", "x bot-y"],
)
def test_bot_substrings_are_case_insensitive(agent):
    assert classify(agent=agent) == BOTS


def test_empty_user_agent_is_not_a_bot():
    assert classify(agent="") == PAGES


def test_enable_static_tracks_static_as_downloads():
    options = ClassifyOptions(enable_static=True)
    assert classify(options, path="/style.css") == DOWNLOADS
    assert classify(options, path="/robots.txt", agent=GOOGLEBOT) == BOTS  # not static any more: next check decides


def test_enable_bots_tracks_them_and_reports_them():
    options = ClassifyOptions(enable_bots=True)
    classifier = Classifier(options)
    bot_hit = hit(path="/paper.pdf", agent=GOOGLEBOT)
    assert classifier.classify(bot_hit) == DOWNLOADS
    assert classifier.is_bot(bot_hit) is True
    assert classifier.is_bot(hit()) is False
    assert classifier.classify(hit(agent=GOOGLEBOT)) == PAGES


def test_enable_http_errors_and_redirects_track_them_as_pages():
    assert classify(ClassifyOptions(enable_http_errors=True), status=404) == PAGES
    assert classify(ClassifyOptions(enable_http_errors=True), status=503, path="/f.pdf") == DOWNLOADS
    assert classify(ClassifyOptions(enable_http_errors=True), status=301) == HTTP_REDIRECTS
    assert classify(ClassifyOptions(enable_http_redirects=True), status=301) == PAGES
    assert classify(ClassifyOptions(enable_http_redirects=True), status=404) == HTTP_ERRORS
    # a tracked error still goes through the later checks
    assert classify(ClassifyOptions(enable_http_errors=True), status=404, path="/a.css") == STATIC


def test_exclude_and_include_path_globs_ignore_the_query_string():
    exclude = ClassifyOptions(exclude_paths=("/blog/*", "*.php"))
    assert classify(exclude, path="/blog/2024/post?x=1") == FILTERED
    assert classify(exclude, path="/index.php?page=/blog/x") == FILTERED
    assert classify(exclude, path="/about?next=/blog/x") == PAGES
    assert classify(exclude, path="/Blog/2024") == PAGES  # case-sensitive like fnmatch on POSIX
    include = ClassifyOptions(include_paths=("/journals/*",))
    assert classify(include, path="/journals/a/b.pdf") == DOWNLOADS
    assert classify(include, path="/other") == FILTERED
    # the path check comes after the status check and before static / bots
    assert classify(include, path="/other", status=404) == HTTP_ERRORS
    assert classify(include, path="/other.css") == FILTERED
    assert classify(include, path="/other", agent=GOOGLEBOT) == FILTERED


def test_host_filters_are_exact_case_insensitive_and_come_last():
    include = ClassifyOptions(include_hosts=("WWW.Example.org",))
    assert classify(include, host="www.example.org") == PAGES
    assert classify(include, host="cdn.example.org") == FILTERED
    assert classify(include, host="cdn.example.org", agent=GOOGLEBOT) == BOTS
    assert classify(include, host="") == PAGES  # no host: not filtered
    assert classify(include, path="http://cdn.example.org/x") == FILTERED  # absolute request target
    exclude = ClassifyOptions(exclude_hosts=("cdn.example.org",))
    assert classify(exclude, host="CDN.example.org") == FILTERED
    assert classify(exclude, host="www.example.org") == PAGES


def test_replaced_download_list():
    options = ClassifyOptions(download_extensions=("pdf", ".EPUB"))
    assert classify(options, path="/a.pdf") == DOWNLOADS
    assert classify(options, path="/a.epub") == DOWNLOADS
    assert classify(options, path="/a.zip") == FILTERED  # a known download, not in the list
    assert classify(options, path="/a.zip", status=404) == FILTERED  # rejected before the status check
    assert classify(options, path="/a.xml") == FILTERED  # also static, but the download check is first
    assert classify(options, path="/a.css") == STATIC
    assert classify(options, path="/a.html") == PAGES
    assert classify(ClassifyOptions(download_extensions=()), path="/a.pdf") == DOWNLOADS  # empty: not given


def test_added_download_extensions():
    options = ClassifyOptions(add_download_extensions=("ris", "bib"))
    assert classify(options, path="/cite.ris") == DOWNLOADS
    assert classify(options, path="/a.pdf") == DOWNLOADS
    assert classify(path="/cite.ris") == PAGES


def test_extra_user_agent_substrings():
    agent = "Mozilla/5.0 AppleWebKit (compatible; ClaudeBot 1.0; +claudebot@anthropic.com)"
    assert classify(agent=agent) == PAGES
    assert classify(ClassifyOptions(useragent_exclude=("ClaudeBot",)), agent=agent) == BOTS


def test_filter_reason_names_the_filter():
    classifier = Classifier(ClassifyOptions(exclude_paths=("/x*",), include_hosts=("a.org",), download_extensions=("pdf",)))
    assert classifier.filter_reason(hit(path="/x1")) == "exclude_path"
    assert classifier.filter_reason(hit(host="b.org")) == "include_host"
    assert classifier.filter_reason(hit(path="/f.zip")) == "download_extension"
    assert classifier.filter_reason(hit(host="a.org")) is None


def test_caches_do_not_change_answers():
    classifier = Classifier(ClassifyOptions())
    for _ in range(3):
        assert classifier.classify(hit(path="/a.css?v=1")) == STATIC
        assert classifier.classify(hit(path="/a.css?v=2", status=404)) == HTTP_ERRORS
        assert classifier.classify(hit(path="/a", agent=GOOGLEBOT)) == BOTS
        assert classifier.classify(hit(path="/a")) == PAGES
