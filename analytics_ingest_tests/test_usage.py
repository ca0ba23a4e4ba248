"""Usage reports over time windows: memex window arithmetic, per-day aggregates from a really
imported day (offline import into the outbox), new vs returning visitors across window edges,
CSV/TSV round trips and the ``report`` command's errors."""

from __future__ import annotations

import argparse
import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from analytics_ingest.cli.report import add_report_parser, run_report
from analytics_ingest.config import load_settings
from analytics_ingest.engine import open_ledger
from analytics_ingest.errors import InputError
from analytics_ingest.sites import load_sites
from analytics_ingest.usage import (
    build_day_aggregate,
    compute_report,
    resolve_window,
    to_markdown,
    window_ending,
    write_report,
)
from analytics_ingest.usage.store import day_path, read_day, write_day
from analytics_ingest.weblogs import pipeline
from analytics_ingest.weblogs.day_hits import DayHits, hit_store_dir
from analytics_ingest_tests.helpers import make_log

D = dt.date


# -- windows ---------------------------------------------------------------------------------------
def _w(name=None, start=None, end=None, today=D(2024, 4, 2), tz="Europe/Paris", first=D(2024, 1, 1)):
    w = resolve_window(name, start, end, tz=tz, today=today, first_day=first)
    return w.first_day, w.last_day


def test_memex_moving_windows_are_whole_days_before_today():
    assert _w("TODAY") == (D(2024, 4, 2), D(2024, 4, 2))
    assert _w("1D") == (D(2024, 4, 1), D(2024, 4, 1))
    assert _w("10d") == (D(2024, 3, 23), D(2024, 4, 1))
    assert _w("30D") == (D(2024, 3, 3), D(2024, 4, 1))
    assert _w("ALL") == (D(2024, 1, 1), D(2024, 4, 1))
    assert _w("2W") == (D(2024, 3, 19), D(2024, 4, 1))
    assert _w("1M", today=D(2024, 3, 31)) == (D(2024, 2, 29), D(2024, 3, 30))  # calendar months
    assert _w("1Y", today=D(2025, 3, 1)) == (D(2024, 3, 1), D(2025, 2, 28))


def test_7d_across_the_paris_dst_change_is_seven_dates():
    # Europe/Paris moved to summer time on 2024-03-31 (a 23-hour day): still one day among seven.
    w = resolve_window("7D", tz="Europe/Paris", today=D(2024, 4, 2), first_day=D(2024, 1, 1))
    assert (w.first_day, w.last_day, len(w)) == (D(2024, 3, 26), D(2024, 4, 1), 7)
    assert D(2024, 3, 31) in w.days() and w.label == "7D"
    # and a Dagster partition: the 7 days ending on the partition day
    p = window_ending("7D", D(2024, 3, 31))
    assert (p.first_day, p.last_day) == (D(2024, 3, 25), D(2024, 3, 31))
    assert (window_ending("TODAY", D(2024, 3, 31)).first_day, window_ending("1D", D(2024, 3, 31)).first_day) \
        == (D(2024, 3, 31), D(2024, 3, 31))


def test_explicit_start_and_end_are_full_local_days_end_included():
    assert _w(start="2024-03-01", end="2024-03-07") == (D(2024, 3, 1), D(2024, 3, 7))
    # memex's own windows end at a midnight: that midnight is not another day
    assert _w(start="2024-03-01T00:00:00", end="2024-03-08T00:00:00") == (D(2024, 3, 1), D(2024, 3, 7))
    # aware times go to the site's zone: 23:30 UTC on 30 March is 31 March in Paris (UTC+2 by then)
    assert _w(start="2024-03-30T23:30:00Z", end="2024-03-31T12:00:00+02:00") == (D(2024, 3, 31), D(2024, 3, 31))
    # start/end win over a range name, as in memex's scripts
    assert _w("7D", "2024-03-01", "2024-03-01") == (D(2024, 3, 1), D(2024, 3, 1))


@pytest.mark.parametrize("args, match", [
    (("7X", None, None), "unknown window '7X'"),
    (("0D", None, None), "empty"),
    ((None, None, None), "no window given"),
    ((None, "2024-03-05", "2024-03-01"), "before start"),
    ((None, "2024-13-01", "2024-03-01"), "not an ISO date"),
    ((None, "2024-03-01", None), "give both"),
    (("ALL", None, None, D(2024, 1, 1)), "before the site's first day"),
])
def test_window_errors_are_one_line(args, match):
    name, start, end, *today = args
    with pytest.raises(InputError, match=match) as info:
        resolve_window(name, start, end, tz="Europe/Paris", today=today[0] if today else D(2024, 4, 2),
                       first_day=D(2024, 1, 1))
    assert "\n" not in str(info.value)


# -- a really imported site ------------------------------------------------------------------------
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36"


def _site(tmp_path: Path, tz: str = "UTC", start: str = "2024-03-01"):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    path = tmp_path / "sites.yaml"
    path.write_text(f"sites:\n  - id: 1\n    key: web\n    name: Web\n    main_url: https://example.org\n"
                    f"    log_dir: {logs}\n    file_pattern: 'access*'\n    timezone: {tz}\n    start_date: {start}\n")
    settings = load_settings(home=tmp_path / "home", environ={})  # no MATOMO_URL: offline outbox
    return load_sites(path)[0], settings, logs, path


def _import(settings, site, day: dt.date) -> None:
    with open_ledger(settings) as ledger:
        pipeline.queue_day(ledger, site, day)
        report = pipeline.import_day(settings, ledger, site, day)
    assert report.status == "loaded", report.errors


def _line(ip: str, day: dt.date, hms: str, path: str, ua: str = UA) -> str:
    stamp = f"{day.day:02d}/{day.strftime('%b')}/{day.year}:{hms} +0000"
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" 200 512 "-" "{ua}"\n'


def test_day_aggregate_of_an_imported_day_matches_the_manifest(tmp_path):
    site, settings, logs, _ = _site(tmp_path)
    day = D(2024, 3, 14)
    manifest = make_log(logs / f"access.log.{day}", 3000, seed=11, date=day.isoformat(), tz="+0000")
    _import(settings, site, day)
    with open_ledger(settings) as ledger:
        path = build_day_aggregate(settings, ledger, site, day)
        seen = set()
        for _record, hits in DayHits(hit_store_dir(settings), ledger, site, day).tables():
            for h in hits.select(["ip", "user_agent", "user_id"]).to_pylist():
                seen.add(h["user_id"] or (h["ip"], h["user_agent"]))
    agg = read_day(path)
    c = agg.counts
    assert c["pageviews"] + c["downloads"] + c["events"] == manifest["tracked"]
    assert (c["pageviews"], c["downloads"], c["events"]) == (manifest["pages"], manifest["downloads"], 0)
    assert c["ignored_bots"] == manifest["bots"] and c["ignored_static"] == manifest["static"]
    assert c["ignored_http_errors"] == manifest["http_errors"]
    assert c["ignored_http_redirects"] == manifest["http_redirects"] and c["ignored_invalid"] == manifest["invalid"]
    assert c["visitors"] == len(agg.vids) == len(seen) and len(set(agg.vids.tolist())) == len(seen)
    assert c["visitors"] <= c["sessions"] <= manifest["tracked"]
    assert sum(agg.pages.values()) == c["pageviews"] and sum(agg.downloads.values()) == c["downloads"]
    assert all(k.startswith("/") and "?" not in k for k in [*agg.pages, *agg.downloads])
    # no raw address anywhere in the aggregate: only hashed ids and paths
    text = str(pq.read_table(path).to_pylist()) + str(pq.read_schema(path).metadata)
    assert not any(isinstance(v, str) and v in text for v in {s[0] for s in seen if isinstance(s, tuple)})

    report = compute_report(settings, site, resolve_window("1D", tz="UTC", today=day + dt.timedelta(days=1),
                                                           first_day=site.start_date))
    values = report.as_dict()
    assert values["pageviews"] + values["downloads"] == manifest["tracked"]
    assert values["visitors"] == values["new_visitors"] == len(seen) and values["returning_visitors"] == 0
    assert values["ignored_hits"] == sum(manifest[k] for k in ("bots", "static", "http_errors", "http_redirects"))
    assert report.missing_days == [] and report.top_pages[0][1] >= report.top_pages[-1][1]
    assert report.history_missing_days == (day - site.start_date).days
    assert "| pageviews |" in to_markdown(report)


def test_new_and_returning_visitors_across_window_edges(tmp_path):
    """A (seen the day before the window) returns; B (first seen inside) and C (seen before the
    window only by ip, other browser = another visitor) are new."""
    site, settings, logs, _ = _site(tmp_path, start="2024-03-13")
    before, first, last = D(2024, 3, 13), D(2024, 3, 14), D(2024, 3, 15)
    a, b = "81.2.69.160", "2001:db8::7"
    content = {
        before: [_line(a, before, "10:00:00", "/a"), _line("81.2.69.10", before, "10:00:00", "/c", ua=UA + " X")],
        first: [_line(a, first, "09:00:00", "/a"), _line(a, first, "09:10:00", "/b"), _line(a, first, "11:00:00", "/b"),
                _line(b, first, "12:00:00", "/files/x.pdf")],
        last: [_line(b, last, "08:00:00", "/a"), _line("81.2.69.10", last, "08:00:00", "/c")],
    }
    for day, lines in content.items():
        (logs / f"access.log.{day}").write_text("".join(lines))
        _import(settings, site, day)
        with open_ledger(settings) as ledger:
            build_day_aggregate(settings, ledger, site, day)
    window = resolve_window(None, "2024-03-14", "2024-03-15", tz="UTC", first_day=site.start_date)
    report = compute_report(settings, site, window)
    v = report.as_dict()
    assert (v["visitors"], v["new_visitors"], v["returning_visitors"]) == (3, 2, 1)
    assert v["sessions"] == 2 + 1 + 2  # A's 11:00 hit is after 30 minutes without one: a second visit
    assert (v["pageviews"], v["downloads"]) == (5, 1)
    assert report.top_pages[:2] == [("/a", 2), ("/b", 2)] and report.top_downloads == [("/files/x.pdf", 1)]
    # the window starting the day before: everyone is new; the 13th alone has A and its other visitor
    wide = compute_report(settings, site, resolve_window(None, "2024-03-13", "2024-03-15", tz="UTC"))
    assert (wide.value("visitors"), wide.value("new_visitors")) == (4, 4)

    # rebuilding a past day with fewer visitors must be seen by the first-seen index: A becomes new
    path = day_path(settings, site, before)
    old = read_day(path)
    write_day(path, old.meta, {}, {}, {})
    assert compute_report(settings, site, window).value("new_visitors") == 3
    # a deleted past day is missing history; rebuilt from the ledger, A returns again
    path.unlink()
    gone = compute_report(settings, site, window)
    assert gone.value("new_visitors") == 3 and gone.history_missing_days == 1
    with open_ledger(settings) as ledger:
        build_day_aggregate(settings, ledger, site, before)
    again = compute_report(settings, site, window)
    assert (again.value("new_visitors"), again.value("returning_visitors"), again.history_missing_days) == (2, 1, 0)
    # a window day without aggregate is listed, not silently zero
    day_path(settings, site, last).unlink()
    partial = compute_report(settings, site, window)
    assert partial.missing_days == [last] and partial.value("days_with_data") == 1


def test_csv_and_tsv_round_trip_with_pandas(tmp_path):
    site, settings, logs, _ = _site(tmp_path, start="2024-03-14")
    day = D(2024, 3, 14)
    make_log(logs / f"access.log.{day}", 400, seed=3, date=day.isoformat(), tz="+0000")
    _import(settings, site, day)
    with open_ledger(settings) as ledger:
        build_day_aggregate(settings, ledger, site, day)
    report = compute_report(settings, site, resolve_window(None, "2024-03-14", "2024-03-15", tz="UTC"), top=5)
    assert report.missing_days == [D(2024, 3, 15)]
    for fmt, sep in (("csv", ","), ("tsv", "\t")):
        written = write_report(report, tmp_path / "out" / f"usage.{fmt}")
        frame = pd.read_csv(written["metrics"], sep=sep)
        assert list(frame.columns) == ["metric", "count", "description"]
        assert dict(zip(frame["metric"], frame["count"])) == report.as_dict()
        assert "2024-03-14 to 2024-03-15" in frame.set_index("metric").loc["days", "description"]
        pages = pd.read_csv(tmp_path / "out" / f"usage-top_pages.{fmt}", sep=sep)
        assert list(pages.itertuples(index=False, name=None)) == [(i, p, n) for i, (p, n) in
                                                                  enumerate(report.top_pages, 1)]
        missing = pd.read_csv(tmp_path / "out" / f"usage-missing_days.{fmt}", sep=sep)
        assert missing.values.tolist() == [["2024-03-15", "usage"]]
        assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


# -- the command -------------------------------------------------------------------------------------
def _run(argv, monkeypatch, sites_path):
    monkeypatch.setenv("ANALYTICS_INGEST_SITES", str(sites_path))
    parser = argparse.ArgumentParser(prog="analytics-ingest")
    add_report_parser(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_report(parser.parse_args(["report", *argv]), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv, match", [
    (["--range", "7X"], "unknown window '7X'"),
    (["--start", "2024-03-05", "--end", "2024-03-01"], "before start"),
    (["--start", "yesterday", "--end", "2024-03-01"], "not an ISO date"),
    (["--range", "7D", "--start", "2024-03-01"], "not both"),
    ([], "no window given"),
    (["--site", "nope", "--range", "7D"], "no site 'nope'"),
    (["--range", "7D", "--format", "xls"], "csv or tsv"),
    (["--range", "7D", "--top", "0"], "--top"),
])
def test_report_command_errors_are_one_line(tmp_path, monkeypatch, argv, match):
    _, _, _, sites_path = _site(tmp_path)
    code, out, err = _run(["--home", str(tmp_path / "home"), *argv], monkeypatch, sites_path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and match in err and err.startswith("analytics-ingest: error: ")


def test_report_command_builds_day_aggregates_after_an_import(tmp_path, monkeypatch):
    site, settings, logs, sites_path = _site(tmp_path, start="2024-03-14")
    day = D(2024, 3, 14)
    manifest = make_log(logs / f"access.log.{day}", 300, seed=5, date=day.isoformat(), tz="+0000")
    _import(settings, site, day)
    home = ["--home", str(tmp_path / "home")]
    code, out, err = _run([*home, "--site", "web", "--range", "1D", "--today", "2024-03-15"], monkeypatch, sites_path)
    assert code == 0 and "built 1 and rebuilt 0 day aggregate(s)" in err
    frame = pd.read_csv(io.StringIO(out))
    values = dict(zip(frame["metric"], frame["count"]))
    assert values["pageviews"] + values["downloads"] == manifest["tracked"]
    # TSV into a file; the 15th was never imported: listed, exit 1
    target = tmp_path / "r.tsv"
    code, out, err = _run([*home, "--site", "1", "--start", "2024-03-14", "--end", "2024-03-15", "-o", str(target)],
                          monkeypatch, sites_path)
    assert code == 1 and out == "" and "1 day(s)" in err and "2024-03-15" in err
    assert pd.read_csv(target, sep="\t").set_index("metric").loc["visitors", "count"] == values["visitors"]


def test_a_file_spanning_local_midnight_shares_its_ignored_lines_between_its_days(tmp_path):
    """A UTC log on a Paris site feeds two local days; tracked hits go where they belong and the
    file's ignored lines are shared out so the two days add up to the file."""
    site, settings, logs, _ = _site(tmp_path, tz="Europe/Paris", start="2024-03-14")
    day, next_day = D(2024, 3, 14), D(2024, 3, 15)
    manifest = make_log(logs / f"access.log.{day}", 2000, seed=9, date=day.isoformat(), tz="+0000")
    _import(settings, site, day)
    with open_ledger(settings) as ledger:
        days = [read_day(build_day_aggregate(settings, ledger, site, d)).counts for d in (day, next_day)]
    assert days[1]["pageviews"] > 0  # 23:00-24:00 UTC is the 15th in Paris
    assert sum(c["pageviews"] + c["downloads"] for c in days) == manifest["tracked"]
    for key in ("bots", "static", "http_errors", "http_redirects", "invalid"):
        assert sum(c[f"ignored_{key}"] for c in days) == manifest[key]
    report = compute_report(settings, site, window_ending("2D", next_day, first_day=site.start_date))
    assert report.value("pageviews") + report.value("downloads") == manifest["tracked"]


def test_shares_add_up_by_largest_remainder():
    from analytics_ingest.usage.daily import _share

    weights = {D(2024, 3, 14): 1, D(2024, 3, 15): 2}
    assert [_share(10, weights, d) for d in weights] == [3, 7]
    assert _share(5, {D(2024, 3, 14): 0, D(2024, 3, 15): 0}, D(2024, 3, 14)) == 5
    assert _share(5, weights, D(2024, 3, 16)) == 0


def test_counter_tables_and_opencast_actions_are_summed_where_present(tmp_path):
    import json

    import pyarrow as pa

    site, settings, logs, _ = _site(tmp_path, start="2024-03-14")
    day, other = D(2024, 3, 14), D(2024, 3, 15)
    write_day(day_path(settings, site, day), {"day": day.isoformat(), "salt_id": "x", "counts": {}}, {}, {}, {})
    write_day(day_path(settings, site, other), {"day": other.isoformat(), "salt_id": "x", "counts": {}}, {}, {}, {})
    counter = settings.home / "counter" / site.key
    counter.mkdir(parents=True)
    pq.write_table(pa.table({"date": [day, day], "item": ["i1", "i2"], "title": ["T1", "T2"],
                             "Total_Item_Investigations": [5, 2], "Unique_Item_Investigations": [3, 1],
                             "Total_Item_Requests": [4, 0], "Unique_Item_Requests": [2, 0]}),
                   counter / f"{day}-items.parquet")
    actions = settings.home / "opencast" / "useractions"
    actions.mkdir(parents=True)
    msgs = [{"action_id": 1, "action": {"type": "PLAY"}}, {"action_id": 1, "action": {"type": "PLAY"}},
            {"action_id": 2, "action": {"type": "HEARTBEAT"}}]
    (actions / f"{other}.jsonl").write_text("".join(json.dumps(m) + "\n" for m in msgs) + '{"torn')
    report = compute_report(settings, site, window_ending("2D", other))
    v = report.as_dict()
    assert (v["counter_total_item_investigations"], v["counter_unique_item_requests"]) == (7, 2)
    assert report.top_counter_items[0] == ("i1", "T1", 5, 3, 4, 2) and report.counter_missing_days == [other]
    assert v["opencast_actions"] == 2 and report.opencast_action_types == [("HEARTBEAT", 1), ("PLAY", 1)]
    assert report.opencast_missing_days == [day]
    # cached counts follow the file when it grows
    with open(actions / f"{other}.jsonl", "a") as fh:
        fh.write('\n{"action_id": 3, "action": {"type": "PLAY"}}\n')
    assert compute_report(settings, site, window_ending("2D", other)).value("opencast_actions") == 3
