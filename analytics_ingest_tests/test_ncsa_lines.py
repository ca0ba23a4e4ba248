"""The workers' fused NCSA loop gives what the general path gives, line for line (issue #16).

Each case runs one worker job both ways (``weblogs.ncsa_lines`` and the general stepper +
counter + callback) on the same lines and compares everything a job returns: the counts, the
invalid reasons and samples, the per-minute tallies, the filtered reasons, each lane's line
numbers, days and request text, the skipped count, and the hit-store part it wrote.
"""

from __future__ import annotations

import marshal

import pytest

from analytics_ingest.weblogs import parallel
from analytics_ingest.weblogs.classify import ClassifyOptions
from analytics_ingest_tests.gen_logs import generate

UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0"
# Lines that take each branch of both loops: the fast expression's fields, then everything the
# fast expression leaves to the general stepper.
EDGE_LINES = [
    f'10.0.0.1 - alice [14/Mar/2024:10:00:00 +0100] "GET /a?x=1 HTTP/1.1" 200 00123 "http://r.example/p" "{UA}"',
    f'10.0.0.1 - - [14/Mar/2024:10:00:01 +0530] "GET /files/report.pdf HTTP/1.1" 200 0 "-" "{UA}"',
    f'10.0.0.1 - - [14/Mar/2024:10:00:01 +0530] "GET /zeros HTTP/1.1" 200 000 "-" "{UA}"',
    f'10.0.0.1 - - [14/Mar/2024:10:00:60 +0530] "GET /leap-second HTTP/1.1" 200 7 "-" "{UA}"',
    f'10.0.0.1 - - [14/Mar/2024:10:00:02 +0530] "GET /huge HTTP/1.1" 200 {"9" * 4301} "-" "{UA}"',
    f'10.0.0.1 - - [14/Mar/2024:10:00:02 +0530] "GET /huge0 HTTP/1.1" 200 0{"9" * 4301} "-" "{UA}"',
    f'10.0.0.1 - - [14/Mar/2024:10:00:02 +0530] "GET /big HTTP/1.1" 200 {"9" * 40} "-" "{UA}"',
    f'10.0.0.2 - - [14/Mar/2024:10:00:02 -0745] "POST /form HTTP/2.0" 302 - "-" "{UA}"',
    f'10.0.0.3 - - [14/Mar/2024:10:00:03 +0000] "GET /missing HTTP/1.1" 404 512 "-" "{UA}"',
    f'10.0.0.3 - - [14/Mar/2024:10:00:03 +0000] "GET /same HTTP/1.1" 304 - "-" "{UA}"',
    '10.0.0.4 - - [14/Mar/2024:10:00:04 +0100] "GET /p HTTP/1.1" 200 10 "-" "Googlebot/2.1 (+http://www.google.com/bot.html)"',
    '10.0.0.4 - - [14/Mar/2024:10:00:04 +0100] "GET /p HTTP/1.1" 200 10 "-" "-"',
    f'10.0.0.5 - - [14/Mar/2024:10:00:05 +0100] "GET /style.css HTTP/1.1" 200 10 "-" "{UA}"',
    f'10.0.0.5 - - [14/Mar/2024:10:00:05 +0100] "GET /private/x HTTP/1.1" 200 10 "-" "{UA}"',
    f'10.0.0.5 - - [14/Mar/2024:10:00:05 +0100] "GET http://other.example/x HTTP/1.1" 200 10 "-" "{UA}"',
    f'2001:db8::1 - - [14/Mar/2024:23:59:59 -0100] "GET /v6 HTTP/1.1" 200 10 "-" "{UA}"',
    f'10.0.0.6 - - [31/Feb/2024:10:00:00 +0100] "GET /bad-date HTTP/1.1" 200 10 "-" "{UA}"',
    f'10.0.0.6 - - [14/Mar/1970:10:00:00 +0100] "GET /epoch HTTP/1.1" 200 10 "-" "{UA}"',
    f'10.0.0.6 - - [14/Mar/2024:10:61:00 +0100] "GET /bad-minute HTTP/1.1" 200 10 "-" "{UA}"',
    '10.0.0.7 - - [14/Mar/2024:10:00:07 +0100] "GET /q HTTP/1.1" 200 10 "-" "Agent \\"quoted\\" 1.0"',
    f'host.example - - [14/Mar/2024:10:00:08 +0100] "GET /named HTTP/1.1" 200 10 "-" "{UA}"',
    f'10.0.0.8 - - [14/Mar/2024:10:00:09 +0100] "GET /odd request line" 200 10 "-" "{UA}"',
    "",
    "   ",
    "not a log line at all",
    f'10.0.0.9 - - [14/Mar/2024:10:00:10 +0100] "GET /{"x" * 70000} HTTP/1.1" 200 10 "-" "{UA}"',
    f'10.0.0.9 - - [14/Mar/2024:10:00:11 +0100] "GET /long-ua HTTP/1.1" 200 10 "-" "{"u" * 3000}"',
]
VHOST = [f"WWW.Example.org.:443 {line}" if line.strip() and line[0].isdigit() else line for line in EDGE_LINES]

OPTIONS = {
    "defaults": ClassifyOptions(),
    "everything_tracked": ClassifyOptions(enable_static=True, enable_bots=True, enable_http_errors=True,
                                          enable_http_redirects=True),
    "filters": ClassifyOptions(exclude_paths=("/private/*",), include_hosts=("www.example.org",),
                               useragent_exclude=("firefox/125",), download_extensions=("csv",)),
}


def _general_path(lines, first_line_no, *, counter, step, **_):
    """What a worker does with a job's lines without the fused loop."""
    counter.run(step, lines)


def _job(tmp_path, monkeypatch, name: str, lines: list[str], fmt: str, options: ClassifyOptions, fused: bool,
         timezone: str):
    store = tmp_path / f"{name}-{'fused' if fused else 'general'}"
    store.mkdir()
    config = {"key": (name, fused), "format_name": fmt, "regex": None, "date_format": None, "classify": options,
              "idsite": 3, "main_url": "https://site.example", "identity": "file-identity", "lanes": 4,
              "delivered": [0, 40, 0, 7], "timezone": timezone, "hit_store": str(store)}
    parallel._STATE.clear()
    part = "\r\n".join(lines).encode("utf-8")
    with monkeypatch.context() as patch:
        if not fused:
            patch.setattr(parallel, "run_lines", _general_path)
        stats, lanes, skipped, stored = parallel._work(config, [part], 5)
    stored_part = None
    if stored and stored != -1:
        stored_part = marshal.loads((store / stored[0]).read_bytes())
        stored_part.pop("store")  # names the writer's folder
    return (stats, lanes, skipped, stored and stored[1], stored_part)


@pytest.mark.parametrize("options", sorted(OPTIONS))
@pytest.mark.parametrize("fmt", ["combined", "common", "common_vhost", "common_complete"])
def test_fused_loop_equals_the_general_path(tmp_path, monkeypatch, options, fmt):
    log = tmp_path / "gen.log"
    generate(str(log), 3000, seed=7, tz="+0530")
    lines = log.read_text(encoding="utf-8").splitlines()
    lines = lines[:1500] + EDGE_LINES + lines[1500:]
    if fmt in ("common_vhost", "common_complete"):
        lines = [f"www.example.org {line}" if line[:1].isdigit() else line for line in lines] + VHOST
    calls = []
    real = parallel.run_lines
    monkeypatch.setattr(parallel, "run_lines", lambda *a, **kw: calls.append(1) or real(*a, **kw))

    fused = _job(tmp_path, monkeypatch, fmt, lines, fmt, OPTIONS[options], True, "Asia/Kolkata")
    general = _job(tmp_path, monkeypatch, fmt, lines, fmt, OPTIONS[options], False, "Asia/Kolkata")
    assert calls == [1]  # the fused loop did run, once, for the job
    assert fused[0].counts == general[0].counts
    assert fused[0].lines_total == general[0].lines_total == len(lines)
    for attr in ("invalid_reasons", "invalid_samples", "utc_minutes", "filtered_reasons", "first_cdt", "last_cdt"):
        assert getattr(fused[0], attr) == getattr(general[0], attr), attr
    assert fused[1:] == general[1:]
    assert sum(fused[0].counts.values()) == len(lines)
    tracked = fused[0].counts["pages"] + fused[0].counts["downloads"]
    sent = sum(len(lane[0]) for lane in fused[1])
    assert tracked == sent + fused[2] and fused[2] > 0  # some lines were already delivered
    assert fused[4]["rows"] == tracked
