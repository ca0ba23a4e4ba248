"""The columnar ``compute`` equals the row-wise algorithm it replaced (``counter_reference``) on
random pretables: every ItemMetrics, TitleMetrics and CounterStats field, for every input form.

The generated rows aim at the places where a vectorised version could differ: double-click chains
(gaps of 0, 29, 30, 31 s), the hour and midnight boundaries, several dates with ``dates=``, IPv6
written in several ways and IPv4-mapped addresses, blanks and padding, missing values, invalid
times and shapes, robots and machines, unknown URLs, one item with several content types, and
items whose hits carry different titles (the item's title is then the one of its earliest counted
titled hit, the smallest title on a tie of seconds: rule 8 of the metrics module). Also the daily step: the Parquet pretable read as columns, moved into the site's
timezone and joined with the next day's first minute, against the old TSV path.
"""

from __future__ import annotations

import datetime as dt
import random
import types
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_ingest.counter import (
    COLUMNS,
    SCIELO_ITEMS,
    daily,
    load_rules,
    rules_from_yaml,
)
from analytics_ingest.counter.daily import compute_counter_day
from analytics_ingest.counter.metrics import PretableColumns, compute
from analytics_ingest.pretable import table as pretable_table
from analytics_ingest.pretable.build import pretable_paths
from analytics_ingest.pretable.table import PretableWriter
from analytics_ingest.pretable.tsv import read_pretable_tsv
from analytics_ingest_tests.counter_reference import compute_reference, local_rows

# Titles a-c on one item: the same item seen under several titles, with and without a title, as
# html (an Investigation) and pdf (a Request).
RULES = rules_from_yaml(r"""
requests: [full]
rules:
  - name: pdf
    pattern: 'x\.org/(?P<title>[a-c])/(?P<item>i\d)\.pdf$'
    content_type: full
    format: pdf
  - name: page
    pattern: 'x\.org/(?P<title>[a-c])/(?P<item>i\d)$'
    content_type: abstract
  - name: untitled
    pattern: 'x\.org/none/(?P<item>i\d)$'
    content_type: full
  - name: upper
    pattern: 'x\.org/up/(?P<title>[a-c])/(?P<item>i\d)$'
    content_type: full
    case: upper
""", source="equivalence.yaml")
SCIELO = load_rules(SCIELO_ITEMS)

URLS = ([f"x.org/{t}/i{k}{ext}" for t in "abc" for k in range(3) for ext in ("", ".pdf")]
        + [f"x.org/none/i{k}" for k in range(3)] + ["x.org/up/a/i1", "x.org/up/b/i1", "x.org/nothing", " x.org/a/i1 ",
                                                    "x.org/a/i1\t", None, "", "   "])
IPS = ["198.51.100.1", "198.51.100.2", " 198.51.100.1", "::ffff:198.51.100.1", "::FFFF:c633:6402", "2001:db8::1",
       "2001:DB8:0:0:0:0:0:1", "2001:db8::2", "fe80::1%eth0", "198.51.100.0/24", None, ""]
BROWSERS = [("Chrome", "120.0"), ("Chrome", "121.0"), ("Chrome", None), ("Firefox", ""), (" Firefox ", "123.0"),
            ("Googlebot", "2.1"), ("curl", "8.4"), ("Headless Chrome", "120"), ("python-requests", "2.31"),
            ("Mozilla/5.0 (compatible; bingbot/2.0)", None), ("Unknown", None), (None, None), ("", "1.0"),
            (None, "1.0"), ("Chrome", 120.0)]
START = dt.datetime(2024, 3, 14, 10, 59, 0)
GAPS = [0, 0, 1, 29, 30, 31, 45, 59, 60, 61, 600, 3600, 13 * 3600 + 1]


def _time_cell(moment: dt.datetime, form: int):
    if form == 0:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if form == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + ".5Z"
    if form == 2:
        return (moment + dt.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S") + "+02:00"
    if form == 3:
        return moment
    if form == 4:
        return moment.replace(tzinfo=dt.timezone.utc).astimezone(dt.timezone(dt.timedelta(hours=-3)))
    if form == 5:
        return pd.Timestamp(moment)
    return [None, "yesterday", "2024-02-30 10:00:00", "2024-03-14 24:00:00", " 2024-03-14 10:00:00 "][form - 6]


@st.composite
def pretables(draw):
    """A list of rows: a few users each walking through time with small gaps."""
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        ip = draw(st.sampled_from(IPS))
        name, version = draw(st.sampled_from(BROWSERS))
        moment = START + dt.timedelta(hours=draw(st.sampled_from([0, 1, 13])), seconds=draw(st.integers(0, 90)))
        for _ in range(draw(st.integers(1, 12))):
            moment += dt.timedelta(seconds=draw(st.sampled_from(GAPS)))
            form = draw(st.sampled_from([0] * 12 + list(range(1, 11))))
            url = draw(st.sampled_from(URLS))
            rows.append((_time_cell(moment, form), name, version, ip, None, None, url))
            if draw(st.integers(0, 15)) == 0:
                rows.append(draw(st.sampled_from([None, ("2024-03-14 10:00:00", "x.org/a/i1"), "not a row", 7])))
    return draw(st.permutations(rows))


DATES = [None, "2024-03-14", "2024-03-15", ["2024-03-14", "2024-03-15"]]


def snapshot(result):
    return ([r.values() for r in result.items], [r.values() for r in result.titles], result.stats.as_dict(),
            result.robots_list)


def assert_same(rows, rules=RULES, **kwargs):
    expected = snapshot(compute_reference(list(rows), rules, **kwargs))
    assert snapshot(compute(list(rows), rules, **kwargs)) == expected
    return expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pretables(), st.sampled_from(DATES), st.sampled_from([30, 0, 60]))
def test_columnar_equals_row_wise_on_random_pretables(rows, dates, window):
    assert_same(rows, dates=dates, double_click_seconds=window)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pretables())
def test_dicts_frames_and_arrow_tables_give_the_row_wise_result(rows):
    rows = [r for r in rows if isinstance(r, tuple) and len(r) == 7]
    expected = snapshot(compute_reference(rows, RULES))
    assert snapshot(compute([dict(zip(COLUMNS, r)) for r in rows], RULES)) == expected
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    assert snapshot(compute(frame, RULES)) == expected
    texts = [tuple(str(v) if isinstance(v, float) else v for v in r)
             for r in rows if r[0] is None or isinstance(r[0], str)]  # an arrow column has one type
    table = pa.table({name: pa.array([r[i] for r in texts], type=pa.string()) for i, name in enumerate(COLUMNS)
                      if name not in ("latitude", "longitude")})
    assert snapshot(compute(table, RULES)) == snapshot(compute_reference(texts, RULES))


def test_extra_robot_patterns_and_custom_lists_agree():
    rows = [(f"2024-03-14 10:{i % 60:02d}:00", name, version, f"198.51.100.{i % 7}", None, None, URLS[i % 20])
            for i, (name, version) in enumerate(BROWSERS * 8)]
    for kwargs in ({}, {"extra_robots": ["^chrome$"]}, {"robots": ()}, {"robots": ["fire"], "machines": ()}):
        assert_same(rows, **kwargs)


def test_a_large_seeded_day_on_scielo_rules():
    rnd = random.Random(11)
    urls = ["www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/?lang=pt",
            "www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/?format=pdf&lang=pt",
            "www.scielo.br/j/csp/a/ZsVXzXLbHbkxhjbNSsgfTHJ/abstract/?lang=en", "www.scielo.br/j/csp/"]
    urls += [f"www.scielo.br/scielo.php?script=sci_arttext&pid=S0102-311X20200001000{k:02d}" for k in range(40)]
    urls += [f"www.scielo.br/pdf/csp/v36n1/1678-4464-csp-36-01-e00{k:06d}.pdf" for k in range(40)]
    rows = []
    for u in range(2_000):
        ip = f"198.51.{u // 250}.{u % 250}" if u % 5 else f"2001:db8::{u:x}"
        agent = rnd.choice([("Chrome", "120.0"), ("Firefox", "123.0"), ("Googlebot", "2.1"), ("curl", "8.4")])
        moment = dt.datetime(2024, 3, 13, 23, 0) + dt.timedelta(seconds=rnd.randrange(26 * 3600))
        for _ in range(rnd.randrange(1, 25)):
            moment += dt.timedelta(seconds=rnd.choice([0, 3, 20, 29, 30, 31, 90, 900]))
            rows.append((moment.strftime("%Y-%m-%d %H:%M:%S"), *agent, ip, None, None, rnd.choice(urls)))
    rnd.shuffle(rows)
    expected = assert_same(rows, SCIELO, dates="2024-03-14")
    assert expected[2]["double_clicks_removed"] > 100 and expected[2]["hits_outside_dates"] > 100
    assert expected[2]["rows_robot"] > 1000 and expected[2]["rows_machine"] > 1000


def test_many_users_and_items_under_several_titles():
    # large enough that (user, position) keys pass 2**31: the count order must not overflow
    rnd = random.Random(5)
    rows = [(f"2024-03-14 {rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}", "Chrome", "1",
             f"10.{u // 65536}.{u // 256 % 256}.{u % 256}", None, None, rnd.choice(URLS[:24]))
            for u in (rnd.randrange(25_000) for _ in range(70_000))]
    expected = assert_same(rows)
    assert expected[2]["hits_counted"] > 50_000 and len({r[1] for r in expected[0] if r[2]}) > 1


def test_pretable_columns_concat_and_take_keep_the_texts():
    a = PretableColumns.of_rows([("2024-03-14 10:00:00", "Chrome", "1", "2001:db8::1", None, None, "x.org/a/i1"),
                                 None])
    b = PretableColumns.of_rows([("2024-03-14 10:00:10", "Firefox", "1", "198.51.100.1", None, None, "x.org/a/i1"),
                                 ("2024-03-14 10:00:20", "Chrome ", "1", "2001:DB8::1", None, None, None)])
    both = a.concat(b)
    assert len(both) == 3 and both.invalid_shape == 1
    assert [both.browser_name.values[c] for c in both.browser_name.codes] == ["Chrome", "Firefox", "Chrome"]
    assert both.action_name.codes.tolist() == [0, 0, -1]
    assert len(both.take(both.action_name.codes >= 0)) == 2 and both.take([0]).invalid_shape == 0


# -- the daily step: Parquet + timezone + the next day's first minute -----------------------------
def _day_rows(rnd: random.Random, day: dt.date, n: int) -> list[tuple]:
    rows = []
    start = dt.datetime.combine(day, dt.time()) - dt.timedelta(hours=3)
    for _ in range(n):
        user = rnd.randrange(40)
        ip = f"198.51.100.{user}" if user % 4 else f"2001:db8::{user:x}"
        agent = [("Chrome", "120.0"), ("Firefox", None), ("Googlebot", "2.1"), (None, None)][user % 4]
        moment = start + dt.timedelta(seconds=rnd.choice([rnd.randrange(30 * 3600), 3 * 3600 + rnd.randrange(-90, 90),
                                                          27 * 3600 + rnd.randrange(-90, 90)]))
        rows.append((moment.strftime("%Y-%m-%d %H:%M:%S"), *agent, ip, None, None, rnd.choice(URLS[:24])))
    return rows


class _Ledger:
    def advance_day(self, *args, **kwargs):
        pass

    def day_status(self, *args):
        return "calculated"


def _site(timezone: str, rules_path):
    return types.SimpleNamespace(id=1, key="web", timezone=timezone, counter=types.SimpleNamespace(items=rules_path))


def _old_counter_day(config, site, day: dt.date):
    """What compute_counter_day counted before the columnar rewrite: the TSVs, row by row."""
    tz = None if site.timezone == "UTC" else ZoneInfo(site.timezone)
    tsv, _ = pretable_paths(config, site, day)
    rows = list(local_rows(read_pretable_tsv(tsv), tz))
    next_tsv, _ = pretable_paths(config, site, day + dt.timedelta(days=1))
    limit = (day + dt.timedelta(days=1)).isoformat() + " 00:01"
    rows += [r for r in local_rows(read_pretable_tsv(next_tsv), tz) if r[0] is not None and r[0] < limit]
    return compute_reference(rows, load_rules(site.counter.items), dates=day.isoformat())


@pytest.mark.parametrize("timezone", ["UTC", "America/Sao_Paulo", "Europe/Paris"])
def test_the_daily_step_on_parquet_equals_the_old_tsv_path(tmp_path, monkeypatch, timezone):
    monkeypatch.setattr(pretable_table, "BATCH_ROWS", 200)  # many row groups: the next day's are skipped
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(r"""
requests: [full]
rules:
  - {name: pdf, pattern: 'x\.org/(?P<title>[a-c])/(?P<item>i\d)\.pdf$', content_type: full, format: pdf}
  - {name: page, pattern: 'x\.org/(?P<title>[a-c])/(?P<item>i\d)$', content_type: abstract}
  - {name: untitled, pattern: 'x\.org/none/(?P<item>i\d)$', content_type: full}
""")
    config = types.SimpleNamespace(home=tmp_path / "home")
    site = _site(timezone, rules_path)
    rnd = random.Random(timezone)
    day = dt.date(2024, 3, 31) if timezone == "Europe/Paris" else dt.date(2024, 3, 14)  # Paris: a DST change
    for d in (day, day + dt.timedelta(days=1)):
        tsv, parquet = pretable_paths(config, site, d)
        with PretableWriter(tsv, parquet) as writer:
            writer.write_many(sorted(_day_rows(rnd, d, 3_000), key=lambda r: r[0]))  # by time, as ours are
    limit = (day + dt.timedelta(days=1) - dt.date(1970, 1, 1)).days * 86400 + 60  # the next day's first minute
    tz = None if timezone == "UTC" else ZoneInfo(timezone)
    assert len(daily._read(parquet, before_utc=daily._earliest_utc(tz, limit))) < 3_000  # later row groups skipped
    old = _old_counter_day(config, site, day)
    new = compute_counter_day(config, _Ledger(), site, day)
    assert new.stats == old.stats.as_dict()
    assert old.stats.hits_outside_dates > 0 and old.stats.double_clicks_removed > 0
    written = pd.read_csv(new.files["items.tsv"], sep="\t", na_values=["NULL"], keep_default_na=False)
    assert written.astype(object).where(written.notna(), None).values.tolist() == [list(r.values()) for r in old.items]


def test_the_daily_step_reads_the_tsv_when_it_is_alone_or_newer(tmp_path):
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text("requests: [full]\nrules:\n  - {pattern: 'x\\.org/none/(?P<item>i\\d)$', content_type: full}\n")
    config = types.SimpleNamespace(home=tmp_path / "home")
    site = _site("UTC", rules_path)
    day = dt.date(2024, 3, 14)
    tsv, parquet = pretable_paths(config, site, day)
    with PretableWriter(tsv, parquet) as writer:
        writer.write(("2024-03-14 10:00:00", "Chrome", "1", "198.51.100.1", None, None, "x.org/none/i1"))
    assert compute_counter_day(config, _Ledger(), site, day).totals["Total_Item_Investigations"] == 1
    parquet.unlink()
    assert compute_counter_day(config, _Ledger(), site, day).totals["Total_Item_Investigations"] == 1
    with PretableWriter(tsv.with_name("new.tsv"), parquet) as writer:  # a Parquet twin, then a newer TSV
        writer.write(("2024-03-14 10:00:00", "Chrome", "1", "198.51.100.1", None, None, "x.org/none/i1"))
    tsv.write_text(tsv.read_text() + "2024-03-14 11:00:00\tChrome\t1\t198.51.100.1\tNULL\tNULL\tx.org/none/i2\n")
    stats = compute_counter_day(config, _Ledger(), site, day).stats
    assert stats["rows_read"] == 2 and stats["items"] == 2


def test_a_half_hour_timezone_counts_local_time(tmp_path):
    # Asia/Kolkata is UTC+05:30: 18:45 UTC on the 13th is 00:15 on the 14th, its session the 00 hour.
    # (The row-wise reader shifted only the hour text: 23:45 on the 13th, then left out of the 14th.)
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text("requests: [full]\nrules:\n  - {pattern: 'x\\.org/none/(?P<item>i\\d)$', content_type: full}\n")
    config = types.SimpleNamespace(home=tmp_path / "home")
    site = _site("Asia/Kolkata", rules_path)
    day = dt.date(2024, 3, 14)
    tsv, parquet = pretable_paths(config, site, day)
    with PretableWriter(tsv, parquet) as writer:
        writer.write(("2024-03-13 18:45:00", "Chrome", "1", "198.51.100.1", None, None, "x.org/none/i1"))
        writer.write(("2024-03-14 18:20:00", "Chrome", "1", "198.51.100.1", None, None, "x.org/none/i2"))
    out = compute_counter_day(config, _Ledger(), site, day)
    assert out.stats["hits_counted"] == 2 and out.stats["hits_outside_dates"] == 0 and out.stats["sessions"] == 2


def test_a_parquet_pretable_that_cannot_be_read_is_an_input_error(tmp_path):
    import pyarrow.parquet as pq

    from analytics_ingest.errors import InputError

    pq.write_table(pa.table({"serverTime": pa.array([0], pa.timestamp("s")), "browserName": ["x"]}),
                   tmp_path / "old.parquet")
    with pytest.raises(InputError, match="has no column browserVersion; materialise the pretable again"):
        daily._read(tmp_path / "old.parquet")
    (tmp_path / "torn.parquet").write_bytes(b"PAR1")
    with pytest.raises(InputError, match="cannot read pretable .*torn.parquet"):
        daily._read(tmp_path / "torn.parquet")
