"""A user-supplied regular expression with named groups (``--log-format-regex``).

Required groups: ``ip``, ``date``, ``status`` and ``path`` or ``request`` (``"GET /p HTTP/1.1"``).
Optional: ``time`` (joined to ``date`` with a space), ``timezone``, ``method``, ``length``,
``host``, ``referrer``, ``user_agent``, ``userid``, ``query_string``,
``generation_time_milli`` / ``_micro`` / ``_secs``. Dates are read with the given
``strptime`` format, else as Apache (``10/Oct/2024:13:55:36 +0200``) or ISO 8601.
"""

from __future__ import annotations

import re

from ..errors import InputError
from ..hits import Hit
from .base import (
    BAD_DATE,
    BAD_STATUS,
    UNPARSEABLE,
    LineParser,
    dash,
    invalid_reason,
    micros_to_ms,
    millis_to_ms,
    seconds_to_ms,
    to_length,
    to_status,
)
from .timeparse import CACHE_LIMIT, DATE_OUT_OF_RANGE, any_cdt, cdt_bounds, strptime_converter

REQUIRED = ("ip", "date", "status")
OPTIONAL = (
    "time", "timezone", "method", "length", "host", "referrer", "user_agent", "userid", "query_string",
    "generation_time_milli", "generation_time_micro", "generation_time_secs",
)  # fmt: skip
_TIMINGS = (
    ("generation_time_milli", millis_to_ms),
    ("generation_time_micro", micros_to_ms),
    ("generation_time_secs", seconds_to_ms),
)


class RegexParser(LineParser):
    name = "regex"

    def __init__(self, pattern: str, date_format: str | None = None) -> None:
        try:
            compiled = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise InputError(
                f"--log-format-regex is not a valid regular expression ({exc}); fix it or use a named --format"
            ) from None
        groups = compiled.groupindex
        missing = [g for g in REQUIRED if g not in groups]
        if "path" not in groups and "request" not in groups:
            missing.append("path (or request)")
        if missing:
            raise InputError(
                f"--log-format-regex lacks the named group(s) {', '.join(missing)}; "
                "it needs (?P<ip>...), (?P<date>...), (?P<status>...) and (?P<path>...) or (?P<request>...)"
            )
        self.regex = compiled
        self.field_count = sum(1 for g in (*REQUIRED, "path", "request", *OPTIONAL) if g in groups)
        self.parse = _make_parse(compiled, strptime_converter(date_format) if date_format else any_cdt)


def _make_parse(compiled: re.Pattern, convert):
    match = compiled.match
    names = set(compiled.groupindex)
    timing = next(((name, fn) for name, fn in _TIMINGS if name in names), None)
    dates: dict[tuple[str, str | None], str] = {}
    hit = Hit
    earliest, latest = cdt_bounds()

    def parse(line: str, line_no: int):
        m = match(line)
        if m is None:
            return invalid_reason(line)
        g = m.groupdict()
        date = g["date"] or ""
        if g.get("time"):
            date = f"{date} {g['time']}"
        key = (date, g.get("timezone"))
        cdt = dates.get(key)
        if cdt is None:
            cdt = convert(date, key[1])
            if cdt is None:
                return BAD_DATE
            if cdt < earliest or cdt > latest:
                return DATE_OUT_OF_RANGE
            if len(dates) >= CACHE_LIMIT:
                dates.clear()
            dates[key] = cdt
        ip = dash(g["ip"])
        method = dash(g.get("method"))
        path = g.get("path")
        if path is None:
            request = (g.get("request") or "").split()
            if len(request) < 2:
                return UNPARSEABLE
            method = method or request[0]
            path = request[1]
        query = dash(g.get("query_string"))
        if query:
            path = f"{path}?{query}"
        if not ip or not path:
            return UNPARSEABLE
        status = to_status(g["status"])
        if status is None:
            return BAD_STATUS
        host = dash(g.get("host"))
        if host:
            host = host.lower().strip(".")
        return hit(
            line_no,
            ip,
            cdt,
            method,
            path,
            status,
            to_length(g.get("length")),
            host,
            dash(g.get("referrer")),
            dash(g.get("user_agent")),
            dash(g.get("userid")),
            timing[1](g.get(timing[0])) if timing else None,
            None,
        )

    return parse
