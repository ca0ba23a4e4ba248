"""COUNTER R5.1 metrics: the Code of Practice's worked examples, edge cases, item rules, files.

Section numbers are those of the COUNTER Code of Practice Release 5.1 (Project-Counter/cop5,
branch 5.1): §3.3.3 Metric Types, §7.2 Double-Click Filtering, §7.3 Counting Unique Items,
§7.4 Counting Unique Titles, §7.8 Internet Robots and Crawlers, Appendix E audit tests.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import random
import re
from pathlib import Path

import pandas as pd
import pytest

from analytics_ingest.counter import (
    COLUMNS,
    DEMO_ITEMS,
    ITEM_COLUMNS,
    SCIELO_ITEMS,
    TITLE_COLUMNS,
    compute,
    load_rules,
    read_pretable_tsv,
    rules_from_yaml,
    session_id,
    write_items_parquet,
    write_items_tsv,
    write_pretable_tsv,
    write_result,
    write_titles_parquet,
    write_titles_tsv,
)
from analytics_ingest.counter.metrics import ROBOTS
from analytics_ingest.counter.output import MalformedLine
from analytics_ingest.errors import ConfigError, InputError
from analytics_ingest_tests.counter_reference import compute_reference

SCIELO = load_rules(SCIELO_ITEMS)
DEMO = load_rules(DEMO_ITEMS)

# A book platform for the Unique_Title examples: the title is the book's ISBN, items are chapters.
BOOKS = rules_from_yaml(r"""
requests: [chapter_pdf, book_pdf]
rules:
  - name: chapter_abstract
    pattern: 'books\.example/(?P<title>\d{13})/ch/(?P<item>\d{13}-\d+)/abstract$'
    content_type: abstract
  - name: chapter_pdf
    pattern: 'books\.example/(?P<title>\d{13})/ch/(?P<item>\d{13}-\d+)\.pdf$'
    content_type: chapter_pdf
    format: pdf
  - name: whole_book
    pattern: 'books\.example/(?P<item>(?P<title>\d{13}))\.pdf$'
    content_type: book_pdf
    format: pdf
""", source="books.yaml")

IP, BROWSER, VERSION = "192.0.2.10", "Firefox", "123.0"
ARTICLE = "www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/?lang=pt"
ARTICLE_PDF = "www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/?format=pdf&lang=pt"
ARTICLE_ABSTRACT = "www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/abstract/?lang=en"
PID3 = "ZsVXzXLbHbkxhjbNSsgfTHJ"


def row(time, action, ip=IP, browser=BROWSER, version=VERSION, lat=-23.5, lon=-46.6):
    """One pretable row (tuple in COLUMNS order); ``time`` may be "HH:MM:SS" on 2024-03-14."""
    if isinstance(time, str) and len(time) == 8:
        time = f"2024-03-14 {time}"
    return (time, browser, version, ip, lat, lon, action)


def metrics(result, item, date=None):
    r = result.item(item, date)
    assert r is not None, f"no row for {item}"
    return (r.total_item_investigations, r.unique_item_investigations, r.total_item_requests,
            r.unique_item_requests)


def totals(result):
    """(TII, UII, TIR, UIR) summed over all items."""
    out = [0, 0, 0, 0]
    for r in result.items:
        for i, v in enumerate((r.total_item_investigations, r.unique_item_investigations,
                               r.total_item_requests, r.unique_item_requests)):
            out[i] += v
    return tuple(out)


def check_accounting(stats):
    assert stats.rows_read == stats.rows_invalid + stats.rows_robot + stats.rows_unknown_item + stats.rows_matched
    assert stats.rows_invalid == (stats.invalid_no_action + stats.invalid_time + stats.invalid_no_ip
                                  + stats.invalid_shape)
    assert stats.rows_matched == stats.hits_counted + stats.double_clicks_removed + stats.hits_outside_dates


# -- the Code of Practice's examples -------------------------------------------------------------
def test_cop_7_2_click_29_seconds_later_is_a_double_click_35_seconds_is_not():
    # §7.2: "a click at 10:01:00 and a second click at 10:01:29 would be considered a double-click
    # (one action); a click at 10:01:00 and a second click at 10:01:35 would count as two".
    inside = compute([row("10:01:00", ARTICLE), row("10:01:29", ARTICLE)], SCIELO)
    assert metrics(inside, PID3) == (1, 1, 1, 1)
    assert inside.stats.double_clicks_removed == 1
    outside = compute([row("10:01:00", ARTICLE), row("10:01:35", ARTICLE)], SCIELO)
    assert metrics(outside, PID3) == (2, 1, 2, 1)
    assert outside.stats.double_clicks_removed == 0
    # "a maximum of 30 seconds between the first and second mouse clicks": 30 s is still a double click
    assert metrics(compute([row("10:01:00", ARTICLE), row("10:01:30", ARTICLE)], SCIELO), PID3) == (1, 1, 1, 1)
    assert metrics(compute([row("10:01:00", ARTICLE), row("10:01:31", ARTICLE)], SCIELO), PID3) == (2, 1, 2, 1)


def test_cop_7_3_surrogate_session_id():
    # §7.3: 2024-06-15 13:35, 192.1.1.168, Mozilla/5.0 -> 192.1.1.168|Mozilla/5.0|2024-06-15|13
    assert session_id("192.1.1.168", "Mozilla", "5.0", "2024-06-15 13:35:00") == "192.1.1.168|Mozilla/5.0|2024-06-15|13"
    ipv6 = session_id("2001:DB8:0::1", "Chrome", None, dt.datetime(2024, 6, 15, 9, 5))
    assert ipv6 == "2001:db8::1|Chrome|2024-06-15|09"


def test_cop_3_3_3_html_then_pdf_of_one_article_is_one_unique_request():
    # §3.3.3 (Totals, Unique Items and Unique Titles): Unique_Item metrics reduce "the inflationary
    # effect that occurs when an HTML full text automatically displays and the user then accesses
    # the PDF version". Different format: not a double click, even 5 s apart.
    result = compute([row("10:00:00", ARTICLE), row("10:00:05", ARTICLE_PDF)], SCIELO)
    assert metrics(result, PID3) == (2, 1, 2, 1)
    assert result.stats.double_clicks_removed == 0


def test_cop_7_3_twelve_chapters_of_one_book_in_one_session():
    # §7.3: "PDFs for twelve chapters are downloaded within a single book in a single session. In R5.1
    # this must be reported as 12 Unique_Item_Requests and 1 Unique_Title_Request".
    isbn = "9780000000001"
    rows = [row(f"10:{n:02d}:00", f"books.example/{isbn}/ch/{isbn}-{n}.pdf") for n in range(1, 13)]
    result = compute(rows, BOOKS)
    assert totals(result) == (12, 12, 12, 12)
    book = result.title(isbn)
    assert (book.total_item_requests, book.unique_item_requests, book.unique_title_requests,
            book.unique_title_investigations) == (12, 12, 1, 1)


def test_cop_7_4_unique_title_counts_once_per_session_whatever_the_number_of_chapters():
    # §7.4: "If multiple transactions qualifying for the Metric_Type in question represent the same
    # title and occur in the same user-session only one unique activity MUST be counted".
    isbn = "9780000000002"
    abstract = f"books.example/{isbn}/ch/{isbn}-1/abstract"
    chapter = f"books.example/{isbn}/ch/{isbn}-1.pdf"
    rows = [row("10:00:00", abstract), row("10:00:10", chapter), row("10:50:00", chapter),  # session 10
            row("11:10:00", abstract)]  # session 11: an investigation only
    result = compute(rows, BOOKS)
    book = result.title(isbn)
    assert (book.unique_title_investigations, book.unique_title_requests) == (2, 1)
    assert (book.total_item_investigations, book.total_item_requests) == (4, 2)
    assert metrics(result, f"{isbn}-1") == (4, 2, 2, 1)


def test_cop_appendix_e_2_3_double_click_audit_test():
    # Appendix E.2.3: 15 inside tests (2 identical requests, the second within 30 s) and 15
    # outside tests (more than 30 s apart) -> 45 Total_Item_Investigations, 45 Total_Item_Requests,
    # 30 Unique_Item_Investigations and 30 Unique_Item_Requests.
    rows = []
    for n in range(30):
        url = f"www.scielo.br/scielo.php?script=sci_arttext&pid=S0102-311X2020000100{n:03d}&lang=pt"
        start = dt.datetime(2024, 3, 14, 8) + dt.timedelta(minutes=3 * n)
        gap = dt.timedelta(seconds=12 if n < 15 else 45)
        rows += [row(str(start), url), row(str(start + gap), url)]
    result = compute(rows, SCIELO)
    assert totals(result) == (45, 30, 45, 30)
    assert result.stats.double_clicks_removed == 15


def test_cop_appendix_e_6_one_access_type_100_items():
    # Appendix E.6.1 option 1: 100 items requested -> 100 each of the four item metrics; E.6.2:
    # a separate Investigation (here the abstract) for each doubles Total_Item_Investigations only.
    rows, abstracts = [], []
    for n in range(100):
        pid = f"S0034-8910{2010 + n % 10}000{n:06d}"
        t = dt.datetime(2024, 3, 14, 0, 0) + dt.timedelta(minutes=5 * n)
        rows.append(row(str(t), f"www.scielo.br/scielo.php?script=sci_arttext&pid={pid}"))
        abstracts.append(row(str(t + dt.timedelta(seconds=20)),
                             f"www.scielo.br/scielo.php?script=sci_abstract&pid={pid}"))
    assert totals(compute(rows, SCIELO)) == (100, 100, 100, 100)
    assert totals(compute(rows + abstracts, SCIELO)) == (200, 100, 100, 100)


def test_cop_appendix_e_5_1_book_segments_across_seven_books():
    # Appendix E.5.1 option 1: 70 Book_Segments across 7 Books -> 70 each item metric and 7 each of
    # Unique_Title_Investigations and Unique_Title_Requests.
    rows = []
    for b in range(7):
        isbn = f"978000000{b:04d}"
        for c in range(10):
            rows.append(row(f"1{b}:{c * 5:02d}:00", f"books.example/{isbn}/ch/{isbn}-{c}.pdf"))
    result = compute(rows, BOOKS)
    assert totals(result) == (70, 70, 70, 70)
    assert sum(t.unique_title_investigations for t in result.titles) == 7
    assert sum(t.unique_title_requests for t in result.titles) == 7


# -- double clicks, sessions --------------------------------------------------------------------
def test_double_click_across_the_hour_boundary_keeps_the_later_click_and_its_session():
    result = compute([row("10:59:50", ARTICLE), row("11:00:10", ARTICLE)], SCIELO)
    assert metrics(result, PID3) == (1, 1, 1, 1)
    assert result.stats.double_clicks_removed == 1
    assert result.stats.sessions == 1  # the 10 o'clock session lost its only click
    # without the double click, two sessions: one unique each
    apart = compute([row("10:59:00", ARTICLE), row("11:00:10", ARTICLE)], SCIELO)
    assert metrics(apart, PID3) == (2, 2, 2, 2)
    assert apart.stats.sessions == 2


def test_sessions_across_midnight_are_separate_and_rows_are_per_date():
    rows = [row("2024-03-14 23:55:00", ARTICLE), row("2024-03-15 00:05:00", ARTICLE)]
    result = compute(rows, SCIELO)
    assert result.stats.sessions == 2
    assert metrics(result, PID3, "2024-03-14") == (1, 1, 1, 1)
    assert metrics(result, PID3, "2024-03-15") == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="pass date="):
        result.item(PID3)


def test_double_click_across_midnight_and_counting_one_date_with_context():
    rows = [row("2024-03-14 23:59:50", ARTICLE), row("2024-03-15 00:00:10", ARTICLE),
            row("2024-03-15 00:00:55", ARTICLE_PDF)]
    day14 = compute(rows, SCIELO, dates="2024-03-14")
    assert day14.items == []  # the 23:59:50 click was a double click of the next day's
    assert day14.stats.double_clicks_removed == 1 and day14.stats.hits_outside_dates == 2
    day15 = compute(rows, SCIELO, dates=[dt.date(2024, 3, 15)])
    assert metrics(day15, PID3) == (2, 1, 2, 1)
    assert day15.stats.double_clicks_removed == 0 and day15.stats.hits_outside_dates == 1
    check_accounting(day14.stats)
    check_accounting(day15.stats)
    with pytest.raises(ConfigError, match="not a date"):
        compute(rows, SCIELO, dates="yesterday")


@pytest.mark.parametrize(
    ("seconds", "expected_total"),
    [
        ((0, 20, 40, 60), 1),  # every gap <= 30 s: the chain collapses to its last click
        ((0, 20, 40, 100), 2),  # 40 -> 100 is 60 s: the chain ends at 40, 100 stands alone
        ((0, 31, 62, 93), 4),  # no gap <= 30 s
        ((0, 0, 0), 1),  # the same second
        ((0, 25, 50, 75, 100, 125, 150, 175, 200, 225), 1),  # a long chain spanning 225 s
    ],
)
def test_chains_of_double_clicks(seconds, expected_total):
    base = dt.datetime(2024, 3, 14, 10)
    rows = [row(str(base + dt.timedelta(seconds=s)), ARTICLE) for s in seconds]
    result = compute(rows, SCIELO)
    assert metrics(result, PID3) == (expected_total, 1, expected_total, 1)
    assert result.stats.double_clicks_removed == len(seconds) - expected_total


def test_different_content_types_of_one_item_are_not_double_clicks():
    rows = [row("10:00:00", ARTICLE_ABSTRACT), row("10:00:05", ARTICLE), row("10:00:08", ARTICLE_PDF),
            row("10:00:20", ARTICLE)]  # the last one is a double click of the 10:00:05 HTML view
    result = compute(rows, SCIELO)
    # investigations: abstract, HTML (one of two), PDF; requests: HTML, PDF
    assert metrics(result, PID3) == (3, 1, 2, 1)
    assert result.stats.double_clicks_removed == 1


def test_a_double_click_needs_the_same_user():
    rows = [row("10:00:00", ARTICLE), row("10:00:05", ARTICLE, ip="192.0.2.11"),
            row("10:00:06", ARTICLE, version="122.0"), row("10:00:07", ARTICLE, browser="Chrome")]
    result = compute(rows, SCIELO)
    assert metrics(result, PID3) == (4, 4, 4, 4)
    assert result.stats.sessions == 4


def test_unique_item_is_one_per_session_not_per_content_type_unlike_scielo():
    # SciELO counts distinct (session, content type); COUNTER (and we) 1 per item per session.
    rows = [row("10:00:00", ARTICLE_ABSTRACT), row("10:05:00", ARTICLE), row("10:10:00", ARTICLE_PDF),
            row("10:15:00", "www.scielo.br/scielo.php?script=sci_arttext&pid=S0102-311X2020000100001")]
    result = compute(rows, SCIELO)
    assert metrics(result, PID3) == (3, 1, 2, 1)
    assert metrics(result, "S0102-311X2020000100001") == (1, 1, 1, 1)  # a PID v2 is another item


# One item under several titles (an article moved to another journal): untitled rule first.
MOVED = rules_from_yaml(r"""
requests: [full]
rules:
  - {pattern: 'x\.org/none/(?P<item>i\d)$', content_type: full}
  - {pattern: 'x\.org/(?P<title>[a-z]+)/(?P<item>i\d)\.pdf$', content_type: full, format: pdf}
  - {pattern: 'x\.org/(?P<title>[a-z]+)/(?P<item>i\d)$', content_type: abstract}
""", source="moved.yaml")


def test_an_item_under_two_titles_takes_the_title_of_its_earliest_counted_titled_hit():
    # Rule 8. The later hit's user sorts first (10.0.0.1 < 10.0.0.2): counting by user would pick "new".
    rows = [row("09:00:00", "x.org/old/i1", ip="10.0.0.2"), row("15:00:00", "x.org/new/i1.pdf", ip="10.0.0.1")]
    for rows_in in (rows, rows[::-1]):
        for count in (compute, compute_reference):
            result = count(rows_in, MOVED)
            assert result.item("i1").title == "old"
            # the title table still counts each hit under its own title
            assert result.title("old").total_item_investigations == result.title("new").total_item_requests == 1
    # an untitled earlier hit leaves the title to the earliest titled one
    untitled_first = [row("08:00:00", "x.org/none/i1")] + rows
    assert compute(untitled_first, MOVED).item("i1").title == "old"
    assert compute(untitled_first[:1], MOVED).item("i1").title is None
    # the same second: the title that sorts first, whatever the users and the input order
    tie = [row("10:00:00", "x.org/zeta/i1", ip="10.0.0.1"), row("10:00:00", "x.org/alpha/i1.pdf", ip="10.0.0.2")]
    for rows_in in (tie, tie[::-1]):
        assert compute(rows_in, MOVED).item("i1").title == compute_reference(rows_in, MOVED).item("i1").title == "alpha"
    # only counted hits: a removed double click (same item, content type and format) gives no title,
    # and each date's row takes that date's earliest hit
    clicks = [row("08:00:00", "x.org/old/i1.pdf"), row("08:00:10", "x.org/new/i1.pdf"),
              row("2024-03-15 07:00:00", "x.org/other/i1"), row("2024-03-15 08:00:00", "x.org/old/i1")]
    for count in (compute, compute_reference):
        result = count(clicks, MOVED)
        assert result.stats.double_clicks_removed == 1
        assert [(r.date, r.title) for r in result.items] == [("2024-03-14", "new"), ("2024-03-15", "other")]
        assert count(clicks, MOVED, dates="2024-03-15").item("i1").title == "other"


# -- robots, unknown items, invalid rows ---------------------------------------------------------
@pytest.mark.parametrize("name", ["Googlebot", "bingbot", "YandexBot", "Baiduspider", "curl", "Wget",
                                  "python-requests", "Screaming Frog SEO Spider", "Headless Chrome",
                                  "Java/17.0", "Apache-HttpClient", "facebookexternalhit/1.1"])
def test_robots_are_excluded(name):
    result = compute([row("10:00:00", ARTICLE, browser=name)], SCIELO)
    assert result.items == [] and result.stats.rows_robot == 1


@pytest.mark.parametrize("name", ["Chrome", "Firefox", "Safari", "Chrome Mobile", "Unknown", "CH", "FF", None, ""])
def test_browsers_are_not_robots(name):
    assert compute([row("10:00:00", ARTICLE, browser=name)], SCIELO).stats.rows_robot == 0


def test_robot_patterns_can_be_added_replaced_and_are_validated():
    rows = [row("10:00:00", ARTICLE, browser="Zotero"), row("10:00:00", ARTICLE, browser="Googlebot")]
    assert compute(rows, SCIELO).stats.rows_robot == 1
    assert compute(rows, SCIELO, extra_robots=["^zotero$"]).stats.rows_robot == 2
    assert compute(rows, SCIELO, robots=()).stats.rows_robot == 0
    assert compute(rows, SCIELO, robots=["zotero"]).stats.rows_robot == 1
    with pytest.raises(ConfigError, match=r"robot pattern '\(bad' does not compile"):
        compute(rows, SCIELO, extra_robots=["(bad"])
    assert "bot" in ROBOTS


def test_unknown_items_and_invalid_rows_are_counted_never_raised():
    rows = [
        row("10:00:00", ARTICLE),
        row("10:00:00", "www.scielo.br/j/csp/"),  # a journal page: no rule
        row("10:00:01", "www.scielo.br/j/csp/"),
        row("10:00:00", None),  # no actionName
        row("10:00:00", "   "),
        row("2024-13-01 00:00:00", ARTICLE),  # no such month
        row("2024-03-14 24:00:00", ARTICLE),
        row("yesterday", ARTICLE),
        (None, BROWSER, VERSION, IP, None, None, ARTICLE),
        row("10:00:00", ARTICLE, ip=None),  # SciELO's IPv6 rows: NULL ip
        row("10:00:00", ARTICLE, ip=""),
        ("2024-03-14 10:00:00", ARTICLE),  # too short
        None,
        "not a row",
        42,
    ]
    result = compute(iter(rows), SCIELO)
    s = result.stats
    assert (s.rows_read, s.rows_matched, s.rows_unknown_item) == (15, 1, 2)
    assert (s.invalid_no_action, s.invalid_time, s.invalid_no_ip, s.invalid_shape) == (2, 4, 2, 4)
    assert s.unknown_examples == ["www.scielo.br/j/csp/"]
    check_accounting(s)


def test_ipv6_users_in_canonical_form():
    rows = [row("10:00:00", ARTICLE, ip="2001:DB8::1"), row("10:00:10", ARTICLE, ip="2001:db8:0:0:0:0:0:1"),
            row("10:00:20", ARTICLE, ip="2001:db8::2"),
            row("10:30:00", ARTICLE, ip="::ffff:192.0.2.99"), row("10:30:05", ARTICLE, ip="192.0.2.99")]
    result = compute(rows, SCIELO)
    # users: 2001:db8::1 (a double click), 2001:db8::2, 192.0.2.99 (a double click)
    assert metrics(result, PID3) == (3, 3, 3, 3)
    assert result.stats.double_clicks_removed == 2


def test_null_latitude_and_longitude_are_counted():
    # SciELO drops them as "local network"; COUNTER has no such rule.
    rows = [row("10:00:00", ARTICLE, lat=None, lon=None), row("11:00:00", ARTICLE, lat=float("nan"), lon=None)]
    assert metrics(compute(rows, SCIELO), PID3) == (2, 2, 2, 2)


def test_time_formats():
    times = ["2024-03-14 10:00:00", "2024-03-14T10:00:40", "2024-03-14 10:01:20.5", "2024-03-14T10:02:00Z",
             "2024-03-14T12:02:40+02:00", dt.datetime(2024, 3, 14, 10, 3, 20),
             dt.datetime(2024, 3, 14, 7, 4, tzinfo=dt.timezone(dt.timedelta(hours=-3))),
             pd.Timestamp("2024-03-14 10:04:40")]
    result = compute([row(t, ARTICLE) for t in times], SCIELO)
    assert metrics(result, PID3) == (8, 1, 8, 1)  # all in one session, 40 s apart
    assert result.stats.sessions == 1 and result.item(PID3).date == "2024-03-14"


# -- input forms, order, streaming ---------------------------------------------------------------
def _sample_rows(n_users=40, seed=7):
    rnd = random.Random(seed)
    urls = [ARTICLE, ARTICLE_PDF, ARTICLE_ABSTRACT, "www.scielo.br/j/csp/",
            "www.scielo.br/pdf/csp/v36n1/1678-4464-csp-36-01-e00123456.pdf"]
    urls += [f"www.scielo.br/scielo.php?script=sci_arttext&pid=S0102-311X202000010000{k}" for k in range(6)]
    rows = []
    for u in range(n_users):
        ip = f"198.51.100.{u}" if u % 3 else f"2001:db8::{u:x}"
        t = dt.datetime(2024, 3, 14) + dt.timedelta(seconds=rnd.randrange(86400 - 3600))
        for _ in range(rnd.randrange(1, 30)):
            t += dt.timedelta(seconds=rnd.choice([1, 5, 20, 29, 30, 31, 60, 400, 1800]))
            rows.append((t.strftime("%Y-%m-%d %H:%M:%S"), rnd.choice(["Chrome", "Firefox", "Googlebot"]), "1.0",
                         ip, None, None, rnd.choice(urls)))
    return rows


def _snapshot(result):
    return [r.values() for r in result.items], [r.values() for r in result.titles], result.stats.as_dict()


def test_any_input_order_gives_the_same_result():
    rows = _sample_rows()
    by_time = compute(sorted(rows), SCIELO)
    by_ip = compute(sorted(rows, key=lambda r: r[3]), SCIELO)  # SciELO's ORDER BY ip
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert _snapshot(compute(shuffled, SCIELO)) == _snapshot(by_time) == _snapshot(by_ip)
    assert by_time.stats.double_clicks_removed > 0 and by_time.stats.rows_robot > 0
    check_accounting(by_time.stats)


def test_the_row_wise_reference_spilling_to_disk_agrees_with_the_columnar_count(tmp_path):
    # The row-wise reference sorted on disk in runs (spill_hits, tmp_dir); the columnar compute()
    # sorts codes in memory. Same tables.
    rows = _sample_rows(n_users=60, seed=3)
    random.Random(2).shuffle(rows)
    columnar = compute((r for r in rows), SCIELO)
    spilled = compute_reference((r for r in rows), SCIELO, spill_hits=25, tmp_dir=tmp_path)
    assert spilled.stats.sorted_runs_spilled > 3
    assert _snapshot(spilled) == _snapshot(columnar)
    assert list(tmp_path.iterdir()) == []  # the runs are removed


def test_dict_rows_dataframes_and_a_rules_path_are_accepted():
    rows = _sample_rows(n_users=10)
    expected = _snapshot(compute(rows, SCIELO))
    assert _snapshot(compute([dict(zip(COLUMNS, r)) for r in rows], SCIELO)) == expected
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["extra"] = 1
    assert _snapshot(compute(frame, SCIELO_ITEMS)) == expected
    with pytest.raises(InputError, match="lacks column actionName"):
        compute(frame.drop(columns=["actionName"]), SCIELO)


def test_dataframe_missing_values():
    frame = pd.DataFrame({
        "serverTime": pd.to_datetime(["2024-03-14 10:00:00", None, "2024-03-14 10:10:00", "2024-03-14 10:20:00"]),
        "browserName": ["Chrome", "Chrome", None, "Chrome"],
        "browserVersion": [120.0, float("nan"), None, 120.0],
        "ip": ["192.0.2.1", "192.0.2.1", "192.0.2.1", pd.NA],
        "latitude": [float("nan")] * 4,
        "longitude": [None] * 4,
        "actionName": [ARTICLE, ARTICLE, ARTICLE, ARTICLE],
    })
    result = compute(frame, SCIELO)
    assert (result.stats.invalid_time, result.stats.invalid_no_ip, result.stats.rows_matched) == (1, 1, 2)
    assert metrics(result, PID3) == (2, 2, 2, 2)  # two users: Chrome/120.0 and (no browser)


# -- item rules ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("www.scielo.br/scielo.php?script=sci_arttext&pid=S0102-311X2020000100001&lang=pt",
         ("S0102-311X2020000100001", "0102-311X", "html", "full_text", True)),
        ("www.scielo.br/scielo.php?script=sci_arttext&pid=S0102-311X2020000100001&lng=en&nrm=iso&tlng=en",
         ("S0102-311X2020000100001", "0102-311X", "html", "full_text", True)),
        ("scielo.br/scielo.php?pid=s0102-311x2020000100001&script=sci_arttext",  # order, case
         ("S0102-311X2020000100001", "0102-311X", "html", "full_text", True)),
        ("www.scielo.br/scielo.php?script=sci_arttext&amp;pid=S0034-89102009000100001&amp;lng=en",
         ("S0034-89102009000100001", "0034-8910", "html", "full_text", True)),
        ("www.scielosp.org/scielo.php?script=sci_arttext_plus&pid=S0034-89102009000100001",
         ("S0034-89102009000100001", "0034-8910", "html", "full_text", True)),
        ("www.scielo.br/scielo.php?script=sci_abstract&pid=S0102-311X2020000100001&lng=en&nrm=iso&tlng=en",
         ("S0102-311X2020000100001", "0102-311X", "html", "abstract", False)),
        ("www.scielo.br/scielo.php?script=sci_pdf&pid=S0102-311X2020000100001&lng=en&nrm=iso&tlng=en",
         ("S0102-311X2020000100001", "0102-311X", "html", "request_pdf", False)),
        ("www.scielo.cl/scieloOrg/php/articleXML.php?pid=S0717-95022012000100001&lang=en",
         ("S0717-95022012000100001", "0717-9502", "xml", "full_text", True)),
        ("www.scielo.br/pdf/csp/v36n1/1678-4464-csp-36-01-e00123456.pdf",
         ("/pdf/csp/v36n1/1678-4464-csp-36-01-e00123456.pdf", "csp", "pdf", "full_text", True)),
        ("westindies.scielo.org/pdf/wimj/v66n6/2309-5830-wimj-66-06-0634.pdf?download",
         ("/pdf/wimj/v66n6/2309-5830-wimj-66-06-0634.pdf", "wimj", "pdf", "full_text", True)),
        ("www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/?lang=pt",
         ("ZsVXzXLbHbkxhjbNSsgfTHJ", "csp", "html", "full_text", True)),
        ("www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/",
         ("ZsVXzXLbHbkxhjbNSsgfTHJ", "csp", "html", "full_text", True)),
        ("www.scielo.br/j/rbepid/a/Tf6n7QpqHGZrDT8hSfpkb7J/?format=pdf&lang=pt",
         ("Tf6n7QpqHGZrDT8hSfpkb7J", "rbepid", "pdf", "full_text", True)),
        ("www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/?lang=en&format=xml",
         ("ZsVXzXLbHbkxhjbNSsgfTHJ", "csp", "xml", "full_text", True)),
        ("www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/abstract/?lang=en",
         ("ZsVXzXLbHbkxhjbNSsgfTHJ", "csp", "html", "abstract", False)),
    ],
)
def test_scielo_rules_match_real_looking_urls(url, expected):
    hit = SCIELO.match(url)
    assert hit is not None, url
    assert (hit.item, hit.title, hit.format, hit.content_type, hit.is_request) == expected


@pytest.mark.parametrize("url", [
    "www.scielo.br/scielo.php?script=sci_issuetoc&pid=0102-311X20200001&lng=en",
    "www.scielo.br/scielo.php?script=sci_serial&pid=0102-311X&lng=en",
    "www.scielo.br/scielo.php?script=sci_arttext&pid=S0102-311X20200001000012",  # 24 characters
    "www.scielo.br/scielo.php?script=sci_arttextx&pid=S0102-311X2020000100001",
    "www.scielo.br/scielo.php?lng=en",
    "www.scielo.br/j/csp/",
    "www.scielo.br/j/csp/i/2020.v36n1/",
    "www.scielo.br/j/csp/a/short/?lang=pt",
    "www.scielo.br/pdf/readcube/epdf.php?doi=10.1590/0102-311x00000000&pid=S0102-311X2020000100001",
    "www.scielo.br/img/revistas/csp/v36n1/fig1.jpg",
    "www.scielo.br/",
])
def test_scielo_rules_leave_other_urls_unknown(url):
    assert SCIELO.match(url) is None


def test_demo_rules_on_the_bundled_demo_logs():
    demo = Path(__file__).resolve().parent.parent / "analytics_ingest" / "demo"
    lines = gzip.open(demo / "access.log.2024-03-14.gz", "rt", encoding="utf-8").read().splitlines()
    lines += (demo / "access.log.2024-03-15").read_text(encoding="utf-8").splitlines()
    paths = [m.group(1) for m in (re.search(r'"[A-Z]+ (/\S*) HTTP', line) for line in lines) if m]
    assert len(paths) > 4000
    kinds = {}
    for path in paths:
        hit = DEMO.match("example.org" + path)
        section = path.split("/")[1].split("?")[0]
        kinds.setdefault(section, set()).add(None if hit is None else (hit.title, hit.is_request))
    assert kinds["products"] == {("products", False)}
    assert kinds["news"] == {("news", False)}
    assert kinds["files"] == {("files", True)}
    assert kinds["books"] == {("books", True)}
    assert ("blog", False) in kinds["blog"]  # "/blog/" itself is not an item
    for section in ("search", "category", "wiki", "docs", "images", "downloads"):
        assert kinds[section] == {None}, section
    hit = DEMO.match("example.org/products/4333?color=red")
    assert (hit.item, hit.title, hit.is_request) == ("products/4333", "products", False)
    hit = DEMO.match("example.org/files/privacy-roadmap-press-2018.pdf")
    assert (hit.item, hit.format, hit.is_request) == ("files/privacy-roadmap-press-2018.pdf", "pdf", True)
    assert DEMO.match("example.org/blog/2022/08/privacy-analytics").item == "blog/2022/08/privacy-analytics"
    assert DEMO.match("example.org/news/release.html").title == "news"


def test_rule_order_and_groups_over_literals():
    rules = rules_from_yaml(r"""
requests: [download]
rules:
  - pattern: '/special/(?P<item>\w+)'
    content_type: page
    title: special
  - pattern: '/(?P<title>\w+)/(?P<item>\w+)\.(?P<format>pdf|zip)$'
    content_type: download
    format: bin
  - pattern: '/(?P<title>\w+)/(?P<item>\w+)(?:\.(?P<format>html))?$'
    content_type: page
    format: html
    case: lower
""")
    assert rules.match("x.org/special/a.pdf").title == "special"  # the first matching rule wins
    hit = rules.match("x.org/docs/a.pdf")
    assert (hit.title, hit.item, hit.format, hit.is_request, hit.rule) == ("docs", "a", "pdf", True, "rules[1]")
    hit = rules.match("x.org/Docs/Page")
    assert (hit.title, hit.item, hit.format, hit.is_request) == ("docs", "page", "html", False)


def test_a_content_type_group_decides_the_request():
    rules = rules_from_yaml(r"""
requests: [fulltext]
rules:
  - pattern: '/(?P<item>\d+)/(?P<content_type>fulltext|abstract|metrics)?'
""")
    assert rules.match("x.org/5/fulltext").is_request
    assert not rules.match("x.org/5/abstract").is_request
    hit = rules.match("x.org/5/")
    assert (hit.content_type, hit.is_request) == (None, False)  # an investigation only


# -- YAML validation -----------------------------------------------------------------------------
GOOD_RULE = "  - {pattern: '/a/(?P<item>\\d+)', content_type: page}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n" + GOOD_RULE + "request: [page]\n",
         "items.yaml: request: unknown key 'request'; known keys are requests, rules"),
        ("requests: [page]\nrules:\n  - {pattern: '/a/(?P<item>\\d+)', content_type: page, formatt: pdf}\n",
         "items.yaml: rules[0].formatt: unknown key 'formatt'; known keys are name, pattern, title, format, "
         "content_type, case"),
        ("requests: [page]\nrules:\n" + GOOD_RULE + "  - {pattern: '/b/(?P<item>\\d+', content_type: page}\n",
         "items.yaml: rules[1].pattern: does not compile (missing ), unterminated subpattern at position 3); "
         "fix the regex"),
        ("requests: [page]\nrules:\n  - {pattern: '/a/(\\d+)', content_type: page}\n",
         "items.yaml: rules[0].pattern: has no named group 'item'; write the item's identifier as (?P<item>...)"),
        ("requests: [page]\nrules:\n  - {pattern: '/(?P<titel>\\w+)/(?P<item>\\d+)', content_type: page}\n",
         "items.yaml: rules[0].pattern: unknown named group 'titel'; known groups are item, title, format, "
         "content_type (use (?:...) for other groups)"),
        ("requests: [page]\nrules:\n  - {pattern: '/a/(?P<item>\\d+)'}\n",
         "items.yaml: rules[0].content_type: is required (or a named group (?P<content_type>...) in the "
         "pattern): it decides whether a hit is a Request"),
        ("requests: [page]\nrules:\n  - {content_type: page}\n",
         "items.yaml: rules[0].pattern: is required: a regex with a named group (?P<item>...)"),
        ("requests: [page]\nrules:\n  - {pattern: 5, content_type: page}\n",
         "items.yaml: rules[0].pattern: 5 must be text (quote it with single quotes in YAML)"),
        ("requests: [pages]\nrules:\n" + GOOD_RULE,
         "items.yaml: requests[0]: 'pages' is not the content_type of any rule (they are 'page'); fix the "
         "spelling or remove it"),
        ("requests: [page]\nrules:\n  - {pattern: '/a/(?P<item>\\d+)', content_type: page, case: title}\n",
         "items.yaml: rules[0].case: 'title' must be one of keep, upper, lower"),
        ("requests: [page]\nrules:\n  - {name: a, pattern: '/a/(?P<item>\\d+)', content_type: page}\n"
         "  - {name: a, pattern: '/b/(?P<item>\\d+)', content_type: page}\n",
         "items.yaml: rules[1].name: 'a' is already the name of rules[0]; give each rule its own name"),
        ("requests: [page]\nrules: []\n",
         "items.yaml: rules: must be a non-empty list of rules (each item starting with '- pattern: ...')"),
        ("requests: [page]\n",
         "items.yaml: top level: must be a mapping with 'rules' (a list of rules) and 'requests' (a list of "
         "content types)"),
        ("requests: page: x\n", "items.yaml: line 1: not valid YAML"),
        ("requests: [page]\nrules:\n  - pattern: '/a/(?P<item>\\d+)'\n    content_type: page\n    content_type: x\n",
         "items.yaml: line 5: key 'content_type' is given twice in one mapping; keep one"),
        ("requests: [page]\nrules:\n  - {pattern: '/a/(?P<item>\\d+)', content_type: page, title: ''}\n",
         "items.yaml: rules[0].title: '' must be non-empty text"),
        ("requests: {page: 1}\nrules:\n" + GOOD_RULE,
         "items.yaml: requests: must be a list of content types, e.g. [full_text, pdf]"),
    ],
)
def test_yaml_mistakes_are_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "items.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_a_missing_rules_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="item rules file .*nope.yaml not found"):
        load_rules(tmp_path / "nope.yaml")


def test_bundled_rule_files_load():
    assert SCIELO.requests == {"full_text"} and len(SCIELO.rules) == 7
    assert DEMO.requests == {"file"}


# -- files -----------------------------------------------------------------------------------------
def _result():
    rows = [row("10:00:00", ARTICLE), row("10:00:05", ARTICLE_PDF), row("11:00:00", ARTICLE_ABSTRACT),
            row("10:00:00", "x.org/a\tb"),  # a tab inside a value
            row("12:00:00", "x.org/3", ip="2001:db8::7")]
    extra = "  - {pattern: 'x\\.org/(?P<item>.+)', content_type: full_text}\n"
    rules = rules_from_yaml(SCIELO_ITEMS.read_text() + extra)
    return compute(rows, rules)


def test_item_and_title_tables_round_trip_through_tsv_and_parquet(tmp_path):
    result = _result()
    items, titles = result.items_frame(), result.titles_frame()
    assert list(items.columns) == list(ITEM_COLUMNS) and list(titles.columns) == list(TITLE_COLUMNS)
    assert items["title"].isna().sum() == 2  # the x.org items have no title
    assert "a\tb" in set(items["item"])

    write_items_tsv(result, tmp_path / "items.tsv")
    write_titles_tsv(result, tmp_path / "titles.tsv")
    text = (tmp_path / "items.tsv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "\t".join(ITEM_COLUMNS)
    assert "\tNULL\t" in text and "\ta\\tb\t" in text
    read = lambda p: pd.read_csv(p, sep="\t", na_values=["NULL"], keep_default_na=False)
    back = read(tmp_path / "items.tsv")
    back["item"] = back["item"].str.replace("\\t", "\t", regex=False)  # pandas does not unescape
    pd.testing.assert_frame_equal(back, items)
    pd.testing.assert_frame_equal(read(tmp_path / "titles.tsv"), titles)

    write_items_parquet(result, tmp_path / "items.parquet")
    write_titles_parquet(result, tmp_path / "titles.parquet")
    back = pd.read_parquet(tmp_path / "items.parquet")
    assert back["date"].tolist() == [dt.date(2024, 3, 14)] * len(back)
    back["date"] = back["date"].map(dt.date.isoformat)
    pd.testing.assert_frame_equal(back, items)
    back = pd.read_parquet(tmp_path / "titles.parquet")
    back["date"] = back["date"].map(dt.date.isoformat)
    pd.testing.assert_frame_equal(back, titles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.parquet", "items.tsv", "titles.parquet", "titles.tsv"]
    assert (os.stat(tmp_path / "items.tsv").st_mode & 0o777) == 0o644


def test_write_result_replaces_files_atomically_and_handles_empty_tables(tmp_path):
    (tmp_path / "day-items.tsv").write_text("old\n")
    written = write_result(_result(), tmp_path, "day")
    assert set(written) == {"items.tsv", "titles.tsv", "items.parquet", "titles.parquet"}
    assert (tmp_path / "day-items.tsv").read_text().startswith("date\titem\t")
    empty = compute([], SCIELO)
    write_result(empty, tmp_path / "sub", "empty")
    assert (tmp_path / "sub" / "empty-items.tsv").read_text() == "\t".join(ITEM_COLUMNS) + "\n"
    frame = pd.read_parquet(tmp_path / "sub" / "empty-titles.parquet")
    assert list(frame.columns) == list(TITLE_COLUMNS) and len(frame) == 0
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left
    with pytest.raises(ValueError, match="unknown format"):
        write_result(empty, tmp_path, "x", formats=["csv"])


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "items.tsv"
    target.write_text("old\n")

    def rows():
        yield ("2024-03-14", "a", None, 1, 1, 0, 0)
        raise RuntimeError("disk on fire")

    from analytics_ingest.counter.output import write_tsv
    with pytest.raises(RuntimeError):
        write_tsv(target, ITEM_COLUMNS, rows())
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["items.tsv"]


def test_pretable_tsv_reader_streams_scielo_files(tmp_path):
    rows = [
        ("2024-03-14 10:00:00", "Chrome", "122.0", "2001:db8::1", -23.55, -46.63, ARTICLE),
        ("2024-03-14 10:00:20", "Chrome", "122.0", "2001:DB8::1", None, None, ARTICLE),
        ("2024-03-14 10:00:30", None, None, "192.0.2.1", None, None, None),
        ("2024-03-14 10:00:40", "Firefox", "123.0", "192.0.2.1", None, None, "x.org/a\\b\tc"),
    ]
    path = write_pretable_tsv(tmp_path / "2024-03-14.tsv", rows)
    lines = path.read_text().splitlines()
    assert lines[0] == "serverTime\tbrowserName\tbrowserVersion\tip\tlatitude\tlongitude\tactionName"
    assert lines[2].endswith("\tNULL\tNULL\t" + ARTICLE) and lines[4].endswith("x.org/a\\\\b\\tc")
    assert list(read_pretable_tsv(path)) == rows
    assert list(read_pretable_tsv(path, unescape=False))[3][6] == "x.org/a\\\\b\\tc"  # as written
    with open(path, "a") as out:
        out.write("2024-03-14 10:00:50\tChrome\n\n")  # a truncated line, an empty line
    got = list(read_pretable_tsv(path))
    assert got[-1] == MalformedLine(6, "2024-03-14 10:00:50\tChrome") and len(got) == 5
    result = compute(read_pretable_tsv(path), SCIELO)
    assert metrics(result, PID3) == (1, 1, 1, 1)
    assert (result.stats.invalid_shape, result.stats.invalid_no_action, result.stats.rows_unknown_item) == (1, 1, 1)


def test_pretable_reader_takes_columns_in_any_order_gzip_and_crlf(tmp_path):
    path = tmp_path / "p.tsv.gz"
    header = ["actionName", "ip", "serverTime", "browserName", "browserVersion", "latitude", "longitude", "x"]
    body = f"{ARTICLE}\t192.0.2.1\t2024-03-14 10:00:00\tChrome\t1\tNULL\tabc\tz\r\n"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as out:
        out.write("\ufeff" + "\t".join(header) + "\r\n" + body)
    assert list(read_pretable_tsv(path)) == [("2024-03-14 10:00:00", "Chrome", "1", "192.0.2.1", None, None, ARTICLE)]


def test_pretable_reader_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("2024-03-14 10:00:00\tChrome\t1\t192.0.2.1\tNULL\tNULL\tx\n")
    with pytest.raises(InputError, match="has no valid header"):
        list(read_pretable_tsv(bad))
    with pytest.raises(InputError, match="cannot read pretable"):
        list(read_pretable_tsv(tmp_path / "missing.tsv"))
