"""check_usable(): files that are no log (of the given format) are refused before anything is sent;
absurd dates are invalid lines, never ledger days."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import random

import pytest

from analytics_ingest.errors import InputError
from analytics_ingest.logs import make_parser, open_log, scan
from analytics_ingest.logs.probe import ProbeResult, check_usable
from analytics_ingest.logs.timeparse import DATE_OUT_OF_RANGE
from analytics_ingest.vocabulary import INVALID, PAGES
from analytics_ingest.weblogs.classify import ClassifyOptions

from .helpers import make_log

UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0"
W3C_HEADER = [
    "#Software: Microsoft Internet Information Services 10.0",
    "#Version: 1.0",
    "#Date: 2024-10-10 00:00:00",
    "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
    "cs(Referer) sc-status sc-substatus sc-win32-status time-taken",
]
NGINX_ERRORS = [
    '2024/10/10 13:55:36 [error] 1234#1234: *{n} open() "/usr/share/nginx/html/favicon.ico" failed '
    '(2: No such file or directory), client: 192.0.2.{n}, server: localhost, request: "GET /favicon.ico HTTP/1.1", '
    'host: "example.org"',
    "2024/10/10 13:55:37 [notice] 1#1: signal process started",
    '2024/10/10 13:55:38 [warn] 7#7: *{n} an upstream response is buffered to a temporary file '
    '/var/cache/nginx/proxy_temp/1/00/0000000001 while reading upstream, client: 192.0.2.{n}, '
    'server: example.org, request: "GET /big.zip HTTP/2.0", upstream: "http://127.0.0.1:8080/big.zip"',
    "2024/10/10 13:55:39 [crit] 7#7: *{n} SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) "
    "while SSL handshaking, client: 198.51.100.{n}, server: 0.0.0.0:443",
]
SERVICES = """\
# Network services, Internet style
#
# Updated from https://www.iana.org/assignments/service-names-port-numbers/ .

tcpmux		1/tcp				# TCP port service multiplexer
echo		7/tcp
echo		7/udp
discard		9/tcp		sink null
systat		11/tcp		users
daytime		13/tcp
netstat		15/tcp
qotd		17/tcp		quote
chargen		19/tcp		ttytst source
ftp-data	20/tcp
ftp		21/tcp
fsp		21/udp		fspd
ssh		22/tcp				# SSH Remote Login Protocol
telnet		23/tcp
smtp		25/tcp		mail
time		37/tcp		timserver
whois		43/tcp		nicname
tacacs		49/tcp				# Login Host Protocol (TACACS)
domain		53/tcp				# Domain Name Server
domain		53/udp
gopher		70/tcp				# Internet Gopher
finger		79/tcp
http		80/tcp		www		# WorldWideWeb HTTP
"""


def combined(stamp="10/Oct/2024:13:55:36 +0000", path="/", status=200, agent=UA, ip="192.0.2.1"):
    return f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" {status} 100 "-" "{agent}"'


def write_lines(path, lines, *, gz=False):
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def refused(path, **kw) -> str:
    with pytest.raises(InputError) as info:
        check_usable(path, **kw)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message


# -- unusable input is refused ----------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_random_bytes_are_refused(tmp_path, gz):
    data = os.urandom(400_000)
    path = tmp_path / ("random.gz" if gz else "random.bin")
    path.write_bytes(gzip.compress(data) if gz else data)
    message = refused(path)
    assert "cannot guess the log format" in message and "do not parse as any known format" in message
    assert message.endswith("pass --format or --log-format-regex")
    assert "of the first 1000 lines" in message


def test_random_bytes_are_refused_with_a_format_too(tmp_path):
    path = tmp_path / "random.bin"
    path.write_bytes(os.urandom(100_000))
    message = refused(path, format_name="combined")
    assert "are not in the 'combined' format (e.g. line " in message and message.endswith("; check --format")


def test_nginx_error_log_is_refused(tmp_path):
    path = write_lines(tmp_path / "error.log", [NGINX_ERRORS[n % 4].format(n=n % 250) for n in range(300)])
    message = refused(path)
    assert "cannot guess the log format (300 of its 300 lines do not parse as any known format)" in message


def test_etc_services_like_text_is_refused(tmp_path):
    path = tmp_path / "services"
    path.write_text(SERVICES)
    assert "cannot guess the log format" in refused(path)
    # "#" comment lines are not W3C headers that would make it pass as a W3C file
    assert "are not in the 'w3c_extended' format" in refused(path, format_name="w3c_extended")


def test_real_log_with_the_wrong_format_is_refused_and_with_the_right_one_accepted(tmp_path):
    path = tmp_path / "access.log"
    make_log(path, 3000, seed=11)
    message = refused(path, format_name="w3c_extended")
    assert message == (
        f"{path}: 1000 of the first 1000 lines are not in the 'w3c_extended' format (e.g. line 1: unparseable); "
        "check --format"
    )
    for name in (None, "auto", "combined", "ncsa_extended"):
        result = check_usable(path, format_name=name)
        assert result.format_name == "combined" and result.lines_read == 1000 and not result.whole_file
        assert 0 < result.invalid < 100
    # refusing leaves nothing behind: the same file is accepted right after
    assert check_usable(path).lines_read == 1000


def test_wrong_regex_is_refused(tmp_path):
    path = tmp_path / "access.log"
    make_log(path, 200, seed=5)
    message = refused(path, regex=r"(?P<ip>\S+) (?P<date>\d{4}-\d\d-\d\d) (?P<status>\d+) (?P<path>\S+)")
    assert "do not match --log-format-regex" in message and message.endswith("--log-date-format")
    ok = r'(?P<ip>\S+) \S+ \S+ \[(?P<date>[^\]]+)\] "\S+ (?P<path>\S+) [^"]*" (?P<status>\d+)'
    assert check_usable(path, regex=ok).format_name == "regex"


def test_gzipped_log_is_probed_like_a_plain_one(tmp_path):
    plain = tmp_path / "access.log"
    make_log(plain, 1500, seed=3)
    packed = tmp_path / "access.log.1"  # the name says nothing: the content does
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert check_usable(packed) == check_usable(plain)
    assert "'iis' format" in refused(packed, format_name="iis")


# -- usable input is accepted -----------------------------------------------------------------
def test_forty_percent_invalid_lines_are_accepted_sixty_are_not(tmp_path):
    rng = random.Random(4)
    good = [combined(path=f"/p/{i}", ip=f"192.0.2.{i % 200}") for i in range(1000)]

    def mixed(share):
        return [f"junk {rng.random()} ###" if i % 10 < share else good[i] for i in range(1000)]

    path = write_lines(tmp_path / "forty.log", mixed(4))
    result = check_usable(path)
    assert (result.lines_read, result.invalid, result.format_name) == (1000, 400, "combined")
    path = write_lines(tmp_path / "sixty.log", mixed(6))
    assert "600 of its 1000 lines are not in the detected 'combined' format" in refused(path)
    assert "600 of its 1000 lines are not in the 'combined' format" in refused(path, format_name="combined")
    assert check_usable(path, max_invalid_share=0.7).invalid == 600


def test_half_invalid_is_accepted_and_only_the_sample_counts(tmp_path):
    lines = [combined() if i % 2 else "junk" for i in range(1000)] + ["junk"] * 5000
    path = write_lines(tmp_path / "half.log", lines)
    assert check_usable(path).invalid == 500
    assert check_usable(path, sample_lines=100).lines_read == 100


def test_empty_and_blank_files_are_accepted(tmp_path):
    empty = write_lines(tmp_path / "empty.log", [])
    assert check_usable(empty) == ProbeResult(lines_read=0, format_name="", whole_file=True)
    assert check_usable(empty, format_name="combined").lines_read == 0
    packed = tmp_path / "empty.gz"
    packed.write_bytes(gzip.compress(b""))
    assert check_usable(packed).lines_read == 0
    blank = write_lines(tmp_path / "blank.log", ["", "   ", ""])
    assert check_usable(blank).lines_read == 3


def test_w3c_logs_with_fields_headers_are_accepted(tmp_path):
    data = [f"2024-10-10 00:00:{i % 60:02d} 10.0.0.1 GET /p/{i} - 443 - 192.0.2.{i % 99} Mozilla/5.0+(X11) - 200 0 0 15"
            for i in range(60)]
    # IIS writes a header block at each restart
    path = write_lines(tmp_path / "u_ex241010.log", [*W3C_HEADER, *data[:30], *W3C_HEADER, *data[30:]])
    result = check_usable(path)
    assert (result.format_name, result.lines_read, result.invalid) == ("iis", 68, 0)
    assert check_usable(path, format_name="iis").invalid == 0
    assert check_usable(path, format_name="w3c_extended").invalid == 0
    # a fresh log holding only its header has nothing to import yet
    assert check_usable(write_lines(tmp_path / "fresh.log", W3C_HEADER), format_name="iis").lines_read == 4


def test_ignored_lines_are_not_invalid(tmp_path):
    lines = [combined(agent="Googlebot/2.1"), combined(path="/a.css"), combined(status=404), combined(status=301)] * 50
    path = write_lines(tmp_path / "ignored.log", lines)
    result = check_usable(path, classify=ClassifyOptions(exclude_paths=("/x*",)))
    assert (result.format_name, result.invalid) == ("combined", 0)


def test_json_logs_and_journals_are_accepted(tmp_path):
    json_lines = [json.dumps({"ip": "192.0.2.1", "path": f"/p/{i}", "status": 200, "user_agent": UA,
                              "date": "2024-10-10T10:00:00+02:00"}) for i in range(20)]
    path = write_lines(tmp_path / "json.log", json_lines)
    assert check_usable(path).format_name == "nginx_json"
    replay = [json.dumps({"ip": "192.0.2.1", "path": f"/matomo.php?idsite=1&rec=1&url=/p/{i}", "status": 502,
                          "date": "2024-10-10T10:00:00Z"}) for i in range(20)]
    path = write_lines(tmp_path / "2024-10-10.replay.jsonl", replay)
    assert check_usable(path, format_name="matomo_replay").invalid == 0
    events = [json.dumps({"ip": "192.0.2.1", "time": "2024-10-10T10:00:00Z", "e_a": "play", "mpid": "abc"})] * 5
    path = write_lines(tmp_path / "events.jsonl", events)
    assert check_usable(path, format_name="opencast_events").invalid == 0


def test_unknown_format_and_unreadable_file_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown log format"):
        check_usable(tmp_path / "missing.log", format_name="nope")
    with pytest.raises(InputError, match="cannot read"):
        check_usable(tmp_path / "missing.log")


def test_standard_input_is_not_consumed():
    assert check_usable("-") == ProbeResult()


def test_a_file_without_newlines_is_one_overlong_line(tmp_path):
    path = tmp_path / "zeros"
    path.write_bytes(b"\x00" * (1 << 20))
    assert "(its only line does not parse" in refused(path)


# -- absurd dates -------------------------------------------------------------------------------
def _future(days: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(days=days)


ABSURD = [dt.datetime(1, 1, 1), dt.datetime(1970, 1, 1), dt.datetime(1990, 12, 31, 23, 59, 59),
          dt.datetime(9999, 12, 31, 23, 59, 59), _future(3)]
GOOD = [dt.datetime(1991, 1, 1), dt.datetime(2024, 10, 10, 13, 55, 36), _future(1)]


def apache(t: dt.datetime, tz="+0000") -> str:
    return f"{t.day:02d}/{t:%b}/{t.year:04d}:{t:%H:%M:%S} {tz}"


def iso(t: dt.datetime, tz="Z") -> str:
    return f"{t.year:04d}-{t:%m-%dT%H:%M:%S}{tz}"


def _scan(tmp_path, lines, **kw):
    path = write_lines(tmp_path / "dates.log", lines)
    with open_log(path) as source:
        return scan(source, **kw)


def _check_dates(stats, n_absurd):
    assert stats.counts[INVALID] == n_absurd
    assert stats.invalid_reasons == {DATE_OUT_OF_RANGE: n_absurd}
    days = stats.local_days("UTC")
    assert all("1991" <= day <= _future(2).date().isoformat() for day in days)
    assert sum(days.values()) == stats.counts[PAGES]
    assert stats.first_cdt >= "1991-01-01"


@pytest.mark.parametrize("fmt", [None, "combined"])
def test_absurd_apache_dates_are_invalid_lines(tmp_path, fmt):
    # offsets push year 1 and 9999 past datetime's range: still out of range, never bad_date
    stamps = [apache(t) for t in ABSURD] + [apache(ABSURD[0], "+0100"), apache(ABSURD[3], "-0100"),
                                           apache(dt.datetime(1991, 1, 1, 0, 30), "+0100")]
    good = [apache(t) for t in GOOD]
    lines = [combined(stamp=s) for s in good + stamps * 2 + good]  # repeated: the cache must not keep them
    tracked = []
    stats = _scan(tmp_path, lines, format_name=fmt, on_tracked=lambda hit, *_: tracked.append(hit.cdt))
    _check_dates(stats, 2 * len(stamps))
    assert len(tracked) == 2 * len(good) and set(stats.local_days("UTC")) == {t.date().isoformat() for t in GOOD}


def test_absurd_iso_dates_are_invalid_in_every_format_family(tmp_path):
    n = len(ABSURD)
    cases = {
        "nginx_json": [json.dumps({"ip": "192.0.2.1", "path": "/", "status": 200, "date": iso(t)})
                       for t in ABSURD + GOOD],
        "w3c_extended": ["#Fields: date time c-ip cs-method cs-uri-stem sc-status"]
        + [f"{t.year:04d}-{t:%m-%d %H:%M:%S} 192.0.2.1 GET / 200" for t in ABSURD + GOOD],
        "elb": [f'{iso(t, "")}.945958Z lb 192.0.2.5:2817 10.0.0.1:80 0.000086 0.021048 0.000037 200 200 0 57 '
                f'"GET https://www.example.com:443/ HTTP/1.1" "{UA}" - -' for t in ABSURD + GOOD],
        "matomo_replay": [json.dumps({"ip": "192.0.2.1", "path": "/matomo.php?idsite=1&rec=1", "date": iso(t)})
                          for t in ABSURD + GOOD],
        "opencast_events": [json.dumps({"ip": "192.0.2.1", "time": iso(t), "e_a": "play"}) for t in ABSURD + GOOD],
    }
    for fmt, lines in cases.items():
        stats = _scan(tmp_path, lines * 2, format_name=fmt)
        _check_dates(stats, 2 * n)
        assert stats.counts[PAGES] == 2 * len(GOOD), fmt
        if fmt != "w3c_extended":  # the W3C header is a line of its own
            assert make_parser(fmt, []).parse(lines[1], 2) == DATE_OUT_OF_RANGE


def test_absurd_dates_with_a_user_regex_and_date_format(tmp_path):
    regex = r"(?P<ip>\S+) \[(?P<date>[^\]]+)\] (?P<path>\S+) (?P<status>\d+)"
    lines = [f"192.0.2.1 [{iso(t)}] /x 200" for t in ABSURD + GOOD]
    _check_dates(_scan(tmp_path, lines, regex=regex), len(ABSURD))
    lines = [f"192.0.2.1 [{apache(t)}] /x 200" for t in ABSURD + GOOD]
    _check_dates(_scan(tmp_path, lines, regex=regex), len(ABSURD))
    lines = [f"192.0.2.1 [{t.year:04d}/{t:%m/%d %H:%M:%S}] /x 200" for t in ABSURD + GOOD]
    _check_dates(_scan(tmp_path, lines, regex=regex, date_format="%Y/%m/%d %H:%M:%S"), len(ABSURD))


def test_a_log_of_absurd_dates_is_refused(tmp_path):
    epoch = [combined(stamp=apache(dt.datetime(1970, 1, 1, 0, 0, i))) for i in range(60)]
    path = write_lines(tmp_path / "epoch.log", epoch)
    message = refused(path)
    assert message.endswith(f"do not parse as any known format; closest: 'combined', e.g. line 1: "
                            f"{DATE_OUT_OF_RANGE}); pass --format or --log-format-regex")
    assert f"(e.g. line 1: {DATE_OUT_OF_RANGE}); check --format" in refused(path, format_name="combined")
