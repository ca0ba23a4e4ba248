"""Log formats: exact Hit fields per format, UTC dates, detection, W3C headers, user regexes."""

from __future__ import annotations

import pytest

from analytics_ingest.errors import InputError
from analytics_ingest.hits import Hit
from analytics_ingest.logs import FORMAT_NAMES, SKIP_LINE, TOO_LONG, make_parser

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"

IIS_HEADER = [
    "#Software: Microsoft Internet Information Services 10.0",
    "#Version: 1.0",
    "#Date: 2024-10-10 00:00:00",
    "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) "
    "cs(Referer) cs-host sc-status sc-substatus sc-win32-status sc-bytes time-taken",
]
IIS_LINE = (
    "2024-10-10 23:59:58 10.0.0.5 GET /caf%C3%A9/r%C3%A9sum%C3%A9.pdf id=7&x=%20 443 jdoe 2001:db8::17 "
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) https://www.google.com/ www.Example.org 200 0 0 5120 1234"
)
W3C_HEADER = [
    "#Version: 1.0",
    "#Fields: date time c-ip cs-method cs-uri-stem cs-uri-query sc-status sc-bytes cs(User-Agent) cs(Referer) time-taken",
]
W3C_LINE = '2024-10-10 12:00:01 192.0.2.1 GET /docs/a.html - 404 321 "Lynx/2.8 libwww" - 0.250'
CLOUDFRONT_HEADER = [
    "#Version: 1.0",
    "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol "
    "cs-bytes time-taken",
]
CLOUDFRONT_LINE = "\t".join(
    [
        "2024-10-10", "23:30:05", "FRA2", "182", "2001:db8:cafe::2", "GET", "d111111abcdef8.cloudfront.net",
        "/view/%E6%97%A5%E6%9C%AC.html", "200", "https://example.com/", "Mozilla/5.0%2520(Windows;%2520U)",
        "a=1", "-", "Miss", "MRVMF==", "www.example.com", "https", "217", "0.010",
    ]
)  # fmt: skip

# format -> (lines, expected Hit of the last line)
SAMPLES = {
    "common": (
        ['203.0.113.9 - alice [10/Oct/2024:23:30:00 +0200] "GET /caf%C3%A9/é?q=%20x HTTP/1.1" 200 2326'],
        Hit(1, "203.0.113.9", "2024-10-10 21:30:00", "GET", "/caf%C3%A9/é?q=%20x", 200, 2326, "", "", "", "alice"),
    ),
    "combined": (
        [f'2001:db8::1 - - [10/Oct/2024:21:30:00 -0500] "POST /api/v1/items?id=5 HTTP/2.0" 201 - "https://ref.example/x" "{UA}"'],
        Hit(1, "2001:db8::1", "2024-10-11 02:30:00", "POST", "/api/v1/items?id=5", 201, None, "", "https://ref.example/x", UA, ""),
    ),
    "common_vhost": (
        ['www.Example.com:443 198.51.100.7 - - [01/Jan/2024:00:30:00 +0100] "GET /index.html HTTP/1.1" 304 0'],
        Hit(1, "198.51.100.7", "2023-12-31 23:30:00", "GET", "/index.html", 304, 0, "www.example.com", "", "", ""),
    ),
    "common_complete": (
        [f'shop.example.org 192.0.2.44 - bob [29/Feb/2024:12:00:00 +0000] "GET /cart HTTP/1.1" 302 15 "-" "{UA}"'],
        Hit(1, "192.0.2.44", "2024-02-29 12:00:00", "GET", "/cart", 302, 15, "shop.example.org", "", UA, "bob"),
    ),
    "iis": (
        [*IIS_HEADER, IIS_LINE],
        Hit(
            5, "2001:db8::17", "2024-10-10 23:59:58", "GET", "/caf%C3%A9/r%C3%A9sum%C3%A9.pdf?id=7&x=%20", 200, 5120,
            "www.example.org", "https://www.google.com/", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "jdoe", 1234,
        ),
    ),
    "w3c_extended": (
        [*W3C_HEADER, W3C_LINE],
        Hit(3, "192.0.2.1", "2024-10-10 12:00:01", "GET", "/docs/a.html", 404, 321, "", "", "Lynx/2.8 libwww", "", 250),
    ),
    "cloudfront": (
        [*CLOUDFRONT_HEADER, CLOUDFRONT_LINE],
        Hit(
            3, "2001:db8:cafe::2", "2024-10-10 23:30:05", "GET", "/view/%E6%97%A5%E6%9C%AC.html?a=1", 200, 182,
            "www.example.com", "https://example.com/", "Mozilla/5.0 (Windows; U)", "", 10,
        ),
    ),
    "nginx_json": (
        [
            '{"ip": "2001:db8::9", "host": "Blog.Example.com", "path": "/p/%C3%A9t%C3%A9?a=1", "status": "200", '
            '"referrer": "-", "user_agent": "curl/8.0", "length": 512, "generation_time_milli": 0.123, '
            '"date": "2024-10-10T22:15:00-05:00"}'
        ],
        Hit(1, "2001:db8::9", "2024-10-11 03:15:00", "", "/p/%C3%A9t%C3%A9?a=1", 200, 512, "blog.example.com", "", "curl/8.0", "", 123),
    ),
    "elb": (
        [
            "2024-10-10T23:39:43.945958Z my-lb 203.0.113.5:2817 10.0.0.1:80 0.000086 0.021048 0.000037 200 200 0 57 "
            f'"GET https://www.example.com:443/path/index.html?x=%C3%A9 HTTP/1.1" "{UA}" DHE-RSA-AES128-SHA TLSv1.2'
        ],
        Hit(1, "203.0.113.5", "2024-10-10 23:39:43", "GET", "/path/index.html?x=%C3%A9", 200, 57, "www.example.com", "", UA, "", 21),
    ),
    "alb": (
        [
            "h2 2024-10-10T00:55:04.127531Z app/my-alb/abcdef 2001:db8::77:51234 10.0.0.1:80 0.001 0.102 0.000 503 503 225 "
            f'24950 "GET https://api.example.com:443/v2/search?q=a+b HTTP/2.0" "{UA}" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
            'arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/tg/abc "Root=1-abc" "api.example.com" '
            '"arn:aws:acm:eu-west-1:123:certificate/1" 0 2024-10-10T00:55:04.023000Z "forward" "-" "-" "10.1.1.1:80" "503"'
        ],
        Hit(1, "2001:db8::77", "2024-10-10 00:55:04", "GET", "/v2/search?q=a+b", 503, 24950, "api.example.com", "", UA, "", 102),
    ),
}


def parse_last(parser, lines):
    result = None
    for number, line in enumerate(lines, 1):
        result = parser.parse(line, number)
    return result


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_line_gives_exact_hit(name):
    lines, expected = SAMPLES[name]
    hit = parse_last(make_parser(name, lines), lines)
    assert hit == expected, f"{hit!r}"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_autodetection_picks_each_format(name):
    lines, expected = SAMPLES[name]
    parser = make_parser(None, lines)
    assert parser.name == name
    assert parse_last(parser, lines) == expected


def test_detection_prefers_the_format_matching_most_lines():
    common = '192.0.2.1 - - [10/Oct/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1'
    combined = common + ' "-" "UA"'
    assert make_parser("auto", [common, common, combined]).name == "common"
    assert make_parser("auto", [combined, combined, common]).name == "combined"
    assert make_parser(None, ["garbage", combined, "more garbage"]).name == "combined"


def test_aliases_resolve_to_canonical_names():
    assert make_parser("ncsa_extended", []).name == "combined"
    assert make_parser("vhost_combined", []).name == "common_complete"
    assert make_parser("amazon_cloudfront", []).name == "cloudfront"
    assert set(SAMPLES) | {"regex"} == set(FORMAT_NAMES)


def test_unknown_format_is_an_input_error_naming_the_valid_ones():
    with pytest.raises(InputError) as err:
        make_parser("apache2", [])
    message = str(err.value)
    assert "apache2" in message and "combined" in message and "w3c_extended" in message
    assert "\n" not in message


def test_undetectable_lines_are_an_input_error_asking_for_format():
    with pytest.raises(InputError, match="--format"):
        make_parser(None, ["hello world", "nothing here"])


def test_w3c_fields_header_mid_file_is_reread():
    parser = make_parser("iis", IIS_HEADER)
    lines = [
        *IIS_HEADER,
        IIS_LINE,
        "#Software: Microsoft Internet Information Services 10.0",
        "#Fields: time date c-ip sc-status cs-uri-stem cs-method",  # restarted with other columns
        "08:00:00 2024-10-11 192.0.2.200 404 /missing GET",
    ]
    results = [parser.parse(line, n) for n, line in enumerate(lines, 1)]
    assert results[:4] == [SKIP_LINE] * 4
    assert all(r is SKIP_LINE for r in results[:4])
    assert results[4].path.startswith("/caf%C3%A9/")
    assert results[5] is SKIP_LINE and results[6] is SKIP_LINE
    last = results[7]
    assert (last.ip, last.cdt, last.status, last.path, last.method) == (
        "192.0.2.200", "2024-10-11 08:00:00", 404, "/missing", "GET",
    )  # fmt: skip


def test_w3c_without_header_is_unparseable_until_one_comes():
    parser = make_parser("w3c_extended", [])
    assert parser.parse(W3C_LINE, 1) == "unparseable"
    assert parser.parse(W3C_HEADER[1], 2) is SKIP_LINE
    assert parser.parse(W3C_LINE, 3).status == 404


def test_cloudfront_rtmp_events_go_to_extra():
    header = (
        "#Fields: date time x-edge-location c-ip x-event sc-bytes x-cf-status x-cf-client-id cs-uri-stem "
        "cs-uri-query c-referrer x-page-url c-user-agent x-sname x-sname-query x-file-ext x-sid"
    )
    line = "\t".join(
        ["2024-10-10", "01:00:00", "FRA2", "192.0.2.3", "play", "1024", "OK", "id1",
         "rtmp://s5c39gqb8ow64r.cloudfront.net/cfx/st", "key=value", "http://player.example.com/player.swf",
         "http://www.example.com/video", "LNX%252010,0,32,18", "myvideo", "p=2", "-", "1"]
    )  # fmt: skip
    parser = make_parser(None, ["#Version: 1.0", header, line])
    assert parser.name == "cloudfront"
    hit = parser.parse(line, 3)
    assert hit.extra == {"event_category": "cloudfront_rtmp", "event_action": "play", "event_name": "myvideo"}
    assert hit.status == 200 and hit.user_agent == "LNX 10,0,32,18"


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_invalid_lines_give_reasons(name):
    parser = make_parser(name, SAMPLES[name][0])
    assert parser.parse("", 1) == "empty"
    assert parser.parse("   ", 1) == "empty"
    assert parser.parse(TOO_LONG, 1) == "line_too_long"
    assert parser.parse("\x00\ufffd garbage", 1) == "unparseable"


def test_bad_date_and_bad_status():
    parser = make_parser("combined", [])
    assert parser.parse('192.0.2.1 - - [31/Feb/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"', 1) == "bad_date"
    assert parser.parse('192.0.2.1 - - [10/Foo/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"', 1) == "bad_date"
    parser = make_parser("nginx_json", [])
    line = '{"ip": "192.0.2.1", "path": "/", "status": "OK", "date": "2024-10-10T10:00:00Z"}'
    assert parser.parse(line, 1) == "bad_status"


def test_escaped_quotes_and_hostnames_use_the_lenient_path():
    parser = make_parser("combined", [])
    line = 'client.example.net - - [10/Oct/2024:10:00:00 +0000] "GET /a\\"b HTTP/1.1" 200 5 "-" "Agent \\"quoted\\" x"'
    hit = parser.parse(line, 7)
    assert (hit.ip, hit.path, hit.user_agent, hit.line_no) == ("client.example.net", '/a\\"b', 'Agent \\"quoted\\" x', 7)


def test_request_line_that_is_not_http_is_unparseable():
    parser = make_parser("combined", [])
    assert parser.parse('192.0.2.1 - - [10/Oct/2024:10:00:00 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"', 1) == "unparseable"
    assert parser.parse('192.0.2.1 - - [10/Oct/2024:10:00:00 +0000] "-" 408 0 "-" "-"', 1) == "unparseable"


def test_nginx_json_alternative_keys_and_hex_escapes():
    parser = make_parser("nginx_json", [])
    line = (
        '{"remote_addr":"192.0.2.8","request_uri":"/x?y=1","time_iso8601":"2024-10-10T23:30:00+02:00",'
        '"status":301,"http_user_agent":"caf\\xc3\\xa9 \\x22q\\x22","http_referer":"http://r/","body_bytes_sent":"12",'
        '"request_time":"0.250","remote_user":"-"}'
    )
    assert parser.parse(line, 2) == Hit(
        2, "192.0.2.8", "2024-10-10 21:30:00", "", "/x?y=1", 301, 12, "", "http://r/", 'café "q"', "", 250
    )


def test_user_regex_with_date_format_and_request_group():
    regex = (
        r"(?P<host>\S+) (?P<ip>\S+) (?P<date>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) (?P<timezone>[+-]\d{4}) "
        r'"(?P<request>[^"]*)" (?P<status>\d+) (?P<generation_time_micro>\d+)'
    )
    parser = make_parser("regex", [], regex=regex, date_format="%Y/%m/%d %H:%M:%S")
    hit = parser.parse('Site.Example ::1 2024/10/10 23:30:00 -0100 "GET /a?b=1 HTTP/1.1" 200 2500', 3)
    assert hit == Hit(3, "::1", "2024-10-11 00:30:00", "GET", "/a?b=1", 200, None, "site.example", "", "", "", 2)
    assert parser.name == "regex"


def test_user_regex_defaults_to_apache_or_iso_dates():
    parser = make_parser(None, [], regex=r"(?P<ip>\S+) \[(?P<date>[^\]]+)\] (?P<path>\S+) (?P<status>\d+)")
    assert parser.parse("1.2.3.4 [10/Oct/2024:23:30:00 +0200] /x 200", 1).cdt == "2024-10-10 21:30:00"
    assert parser.parse("1.2.3.4 [2024-10-10T23:30:00Z] /x 200", 1).cdt == "2024-10-10 23:30:00"


@pytest.mark.parametrize(
    ("regex", "words"),
    [
        (r"(?P<ip>\S+ (?P<date>", "not a valid regular expression"),
        (r"(?P<ip>\S+) (?P<date>\S+)", "status"),
        (r"(?P<ip>\S+) (?P<date>\S+) (?P<status>\d+)", "path"),
    ],
)
def test_bad_user_regex_is_an_input_error(regex, words):
    with pytest.raises(InputError, match=words):
        make_parser("regex", [], regex=regex)


def test_regex_format_without_regex_and_regex_with_other_format_are_errors():
    with pytest.raises(InputError, match="--log-format-regex"):
        make_parser("regex", [])
    with pytest.raises(InputError, match="--log-format-regex"):
        make_parser("combined", [], regex=r"(?P<ip>\S+)")


def test_apache_dates_by_the_minute_equal_apache_cdt_second_by_second():
    """The parsers' slow path works out each minute once and appends the seconds: exact for
    every offset (whole minutes), across midnight and month ends, and for what is not a time."""
    from analytics_ingest.logs.timeparse import apache_cdt, apache_cdt_by_minute

    cdt_of = apache_cdt_by_minute()
    stamps = []
    for day in ("31/Dec/2023", "29/Feb/2024", "30/Feb/2024", "01/Mar/2024", "1/Mar/2024", "01/mar/2024"):
        for clock in ("00:00", "00:59", "12:30", "23:59", "24:00", "23:60", "9:05"):
            for offset in ("+0000", "-0130", "+1400", "+0545", "-1200", "+2500", "+0060", "Z0000"):
                for second in ("00", "01", "30", "59", "60", "99", "5", "٣٣", "0٣"):
                    stamps.append(f"{day}:{clock}:{second} {offset}")
    stamps += ["10/Oct/2024:13:55:36", "10/Oct/2024:13:55:36 +02:00", "", "garbage with twenty six chr"]
    for _ in range(2):  # the second round is answered from the cache
        for stamp in stamps:
            assert cdt_of(stamp) == apache_cdt(stamp), stamp
    assert cdt_of("31/Dec/2023:23:59:59 -0130") == "2024-01-01 01:29:59"
    assert cdt_of("01/Mar/2024:00:00:07 +0545") == "2024-02-29 18:15:07"
    assert cdt_of("29/Feb/2024:23:59:60 +0000") is None and cdt_of("30/Feb/2024:10:00:00 +0000") is None
