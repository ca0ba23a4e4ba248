"""scan(): every line counted exactly once, whatever the bytes; tracked hits in file order."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tempfile

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from analytics_ingest.errors import InputError
from analytics_ingest.logs import open_log, scan
from analytics_ingest.logs.decompress import sniff
from analytics_ingest.vocabulary import (
    BOTS,
    DOWNLOADS,
    FILTERED,
    HTTP_ERRORS,
    HTTP_REDIRECTS,
    IGNORED_CATEGORIES,
    INVALID,
    PAGES,
    STATIC,
    TRACKED_CATEGORIES,
)
from analytics_ingest.weblogs.classify import ClassifyOptions

UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0"


def line(path="/", status=200, agent=UA, ip="192.0.2.1", stamp="10/Oct/2024:13:55:36 +0000"):
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" {status} 100 "-" "{agent}"'


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def run_scan(path, **kwargs):
    with open_log(path) as source:
        stats = scan(source, **kwargs)
    assert stats.lines_total == sum(stats.counts.values())
    return stats


def reader_line_count(data: bytes) -> int:
    """Lines as the reader defines them: split on \\n; a last line without \\n counts."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# -- examples -----------------------------------------------------------------------------------
def test_mixed_log_counts_and_callback_order(tmp_path):
    lines = [
        line("/a"),  # 1 page
        line("/paper.pdf"),  # 2 download
        line("/s.css"),  # 3 static
        line("/a", agent="Googlebot/2.1"),  # 4 bot
        line("/a", status=302),  # 5 redirect
        line("/a", status=404),  # 6 error
        "garbage",  # 7 invalid
        "",  # 8 invalid (empty)
        line("/late", stamp="10/Oct/2024:21:30:00 -0500"),  # 9 page on the next UTC day
    ]
    path = write(tmp_path, "access.log", ("\n".join(lines) + "\n").encode())
    seen = []
    stats = run_scan(path, on_tracked=lambda hit, category, bot: seen.append((hit.line_no, category, bot)))
    assert seen == [(1, PAGES, False), (2, DOWNLOADS, False), (9, PAGES, False)]
    assert stats.counts == {
        PAGES: 2, DOWNLOADS: 1, BOTS: 1, STATIC: 1, HTTP_ERRORS: 1, HTTP_REDIRECTS: 1, FILTERED: 0, INVALID: 2,
    }  # fmt: skip
    assert set(stats.counts) == {*TRACKED_CATEGORIES, *IGNORED_CATEGORIES, INVALID}
    assert stats.lines_total == 9
    assert stats.invalid_reasons == {"unparseable": 1, "empty": 1}
    assert stats.invalid_samples == [(7, "unparseable", "garbage"), (8, "empty", "")]
    assert stats.local_days("UTC") == {"2024-10-10": 2, "2024-10-11": 1}
    # the same hits in the site's own days: 21:30 in New York is still the 10th there
    assert stats.local_days("America/New_York") == {"2024-10-10": 3}
    assert sum(stats.utc_minutes.values()) == 3
    assert (stats.first_cdt, stats.last_cdt) == ("2024-10-10 13:55:36", "2024-10-11 02:30:00")
    assert stats.format_name == "combined" and stats.compression == "none"


def test_enable_bots_reports_bots_to_the_callback(tmp_path):
    path = write(tmp_path, "a.log", (line("/a", agent="curl/8") + "\n" + line("/b") + "\n").encode())
    seen = []
    run_scan(path, options=ClassifyOptions(enable_bots=True), on_tracked=lambda h, c, b: seen.append((h.path, b)))
    assert seen == [("/a", True), ("/b", False)]


def test_w3c_headers_are_counted_as_filtered(tmp_path):
    text = "\n".join(
        [
            "#Software: Microsoft Internet Information Services 10.0",
            "#Fields: date time c-ip cs-method cs-uri-stem sc-status cs(User-Agent)",
            "2024-10-10 10:00:00 192.0.2.1 GET /a 200 Mozilla/5.0",
            "#Fields: date time c-ip cs-uri-stem sc-status",
            "2024-10-10 10:00:01 192.0.2.2 /b 200",
        ]
    )
    stats = run_scan(write(tmp_path, "u_ex.log", text.encode()))
    assert stats.format_name == "iis"
    assert stats.counts[FILTERED] == 3 and stats.counts[PAGES] == 2
    assert stats.filtered_reasons == {"w3c_header": 3}


def test_file_without_any_parseable_line_is_all_invalid(tmp_path):
    stats = run_scan(write(tmp_path, "junk.bin", b"\x00\x01 not a log\n\nstill not\n"))
    assert stats.counts[INVALID] == 3 and stats.lines_total == 3
    assert stats.invalid_reasons == {"unparseable": 2, "empty": 1}
    assert stats.format_name == ""


def test_format_found_after_a_long_garbage_prefix(tmp_path):
    text = "\n".join(["noise %d" % i for i in range(120)] + [line("/x")] * 5)
    stats = run_scan(write(tmp_path, "late.log", text.encode()))
    assert stats.counts[INVALID] == 120 and stats.counts[PAGES] == 5
    assert stats.format_name == "combined"


def test_invalid_samples_are_capped_and_cut(tmp_path):
    text = "\n".join(["x" * 500] * 30)
    stats = run_scan(write(tmp_path, "x.log", text.encode()), format_name="common")
    assert len(stats.invalid_samples) == 10
    assert all(len(sample[2]) == 200 for sample in stats.invalid_samples)
    assert stats.invalid_samples[0][0] == 1


def test_callback_exception_propagates(tmp_path):
    path = write(tmp_path, "a.log", ((line("/a") + "\n") * 3).encode())

    def boom(hit, category, bot):
        raise RuntimeError("lane closed")

    with open_log(path) as source, pytest.raises(RuntimeError, match="lane closed"):
        scan(source, on_tracked=boom)


def test_truncated_gzip_is_reported_in_stats(tmp_path):
    blob = gzip.compress(("".join(line(f"/p{i}") + "\n" for i in range(20000))).encode())
    stats = run_scan(write(tmp_path, "cut.gz", blob[: len(blob) // 2]))
    assert stats.incomplete is True and "truncated" in stats.incomplete_reason
    assert stats.compression == "gzip"
    assert 0 < stats.counts[PAGES] == stats.lines_total < 20000


def test_unknown_format_raises_before_reading(tmp_path):
    with open_log(write(tmp_path, "a.log", b"x\n")) as source, pytest.raises(InputError):
        scan(source, format_name="nope")


def test_given_stats_object_is_filled(tmp_path):
    from analytics_ingest.logs.scan import ScanStats

    mine = ScanStats()
    returned = run_scan(write(tmp_path, "a.log", (line() + "\n").encode()), stats=mine)
    assert returned is mine and mine.counts[PAGES] == 1


# -- properties ---------------------------------------------------------------------------------
SAMPLE_LINES = [
    line().encode(),
    line("/f.pdf", 404).encode(),
    b'2001:db8::1 - - [10/Oct/2024:13:55:36 +0200] "GET /caf\xc3\xa9 HTTP/1.1" 200 - "-" "-"',
    b"#Fields: date time c-ip cs-uri-stem sc-status",
    b"2024-10-10 10:00:00 192.0.2.1 /a 200",
    b'{"ip": "192.0.2.1", "path": "/", "status": 200, "date": "2024-10-10T10:00:00Z", "referrer": "-"}',
    b'{"ip": ',
    b"",
    b"\r",
    b"caf\xe9 \xff\xfe\x00",
]

segments = st.one_of(
    st.binary(max_size=120),
    st.sampled_from(SAMPLE_LINES),
    st.sampled_from([b"L" * 70_000, b"\xf0" * 66_000]),  # over MAX_LINE_BYTES
)
documents = st.builds(
    lambda parts, seps, end: b"".join(p + seps[i % len(seps)] for i, p in enumerate(parts)) + end,
    st.lists(segments, max_size=40),
    st.lists(st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\x00\n"]), min_size=1, max_size=4),
    st.one_of(st.just(b""), st.binary(max_size=30)),
)
COMPRESSORS = {"none": lambda b: b, "gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


def _scan_bytes(data: bytes, compression: str, format_name):
    fd, name = tempfile.mkstemp(suffix=".log")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(COMPRESSORS[compression](data))
        calls = []
        with open_log(name) as source:
            stats = scan(source, format_name=format_name, on_tracked=lambda h, c, b: calls.append(h.line_no))
        return stats, calls
    finally:
        os.unlink(name)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    data=documents,
    compression=st.sampled_from(sorted(COMPRESSORS)),
    format_name=st.sampled_from([None, "combined", "common", "iis", "nginx_json", "elb"]),
)
def test_every_line_is_counted_once(data, compression, format_name):
    stats, calls = _scan_bytes(data, compression, format_name)
    assert stats.lines_total == sum(stats.counts.values()) == reader_line_count(data)
    assert stats.counts[PAGES] + stats.counts[DOWNLOADS] == len(calls)
    assert calls == sorted(calls) and len(set(calls)) == len(calls)
    assert sum(stats.invalid_reasons.values()) == stats.counts[INVALID]
    assert not stats.incomplete
    assert len(stats.invalid_samples) <= 10


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(data):
    assume(sniff(data[:16]) == "none")  # bytes that start like gzip/bz2/xz are read as such
    stats, _ = _scan_bytes(data, "none", None)
    assert stats.lines_total == sum(stats.counts.values()) == reader_line_count(data)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=4000), cut=st.integers(min_value=0, max_value=200))
def test_damaged_compressed_files_never_raise(data, cut):
    blob = gzip.compress(data)
    blob = blob[: max(0, len(blob) - cut)]
    stats, _ = _scan_bytes_raw(blob)
    assert stats.lines_total == sum(stats.counts.values())
    if cut and len(blob) >= 4:
        assert stats.incomplete
        assert stats.lines_total <= reader_line_count(data)


def _scan_bytes_raw(blob: bytes):
    fd, name = tempfile.mkstemp(suffix=".gz")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        with open_log(name) as source:
            return scan(source), None
    finally:
        os.unlink(name)
