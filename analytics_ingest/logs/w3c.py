"""W3C extended log files: generic W3C, Microsoft IIS and Amazon CloudFront.

The columns are named by a ``#Fields:`` header. IIS writes a new header block each time it
restarts, possibly with other columns, so the parser re-reads every ``#Fields:`` line it meets
and all ``#...`` lines are returned as :data:`SKIP_LINE`.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from ..hits import Hit
from .base import (
    BAD_DATE,
    BAD_STATUS,
    SKIP_LINE,
    UNPARSEABLE,
    LineParser,
    dash,
    invalid_reason,
    millis_to_ms,
    seconds_to_ms,
    to_length,
    to_status,
)
from .timeparse import CACHE_LIMIT, DATE_OUT_OF_RANGE, cdt_bounds, iso_cdt

W3C_EXTENDED, IIS, CLOUDFRONT = "w3c_extended", "iis", "cloudfront"
FIELDS_PREFIX = "#Fields:"

_TOKENS = re.compile(r'"[^"]*"|[^\s"]+|"[^"]*$').findall  # quoted values may hold spaces

# Hit attribute <- W3C column names (lower case), first present wins.
_COLUMNS = {
    "date": ("date",),
    "time": ("time",),
    "ip": ("c-ip",),
    "method": ("cs-method",),
    "stem": ("cs-uri-stem",),
    "query": ("cs-uri-query",),
    "uri": ("cs-uri",),
    "status": ("sc-status",),
    "length": ("sc-bytes",),
    "host": ("cs-host",),
    "agent": ("cs(user-agent)",),
    "referrer": ("cs(referer)", "cs(referrer)"),
    "user": ("cs-username",),
    "taken": ("time-taken",),
}
_CLOUDFRONT_COLUMNS = dict(
    _COLUMNS,
    host=("x-host-header",),
    agent=("cs(user-agent)", "c-user-agent"),
    referrer=("cs(referer)", "c-referrer"),
    event=("x-event",),
    stream=("x-sname",),
)

# Header evidence for the flavour (used by detection).
_CLOUDFRONT_MARKS = frozenset({"x-edge-location", "x-edge-request-id", "x-edge-result-type", "x-host-header"})
_IIS_MARKS = frozenset({"s-sitename", "s-computername", "sc-win32-status", "sc-substatus"})


def fields_of(header: str) -> list[str]:
    """Column names of a ``#Fields:`` line, lower case."""
    return header[len(FIELDS_PREFIX) :].strip().lower().split()


def flavour(header_lines: list[str]) -> str | None:
    """Which W3C parser suits a file whose leading ``#`` lines are ``header_lines``; None if no ``#Fields:``."""
    fields = None
    software = ""
    for line in header_lines:
        if line.startswith(FIELDS_PREFIX):
            fields = fields_of(line)
            break
        if line.lower().startswith("#software:"):
            software = line.lower()
    if fields is None:
        return None
    names = set(fields)
    if names & _CLOUDFRONT_MARKS:
        return CLOUDFRONT
    if names & _IIS_MARKS or "internet information services" in software or "iis" in software.split():
        return IIS
    return W3C_EXTENDED


class W3cParser(LineParser):
    field_count = 11

    def __init__(self, name: str = W3C_EXTENDED, first_lines: list[str] | tuple = ()) -> None:
        self.name = name
        columns, split, fix_agent, taken_to_ms = _FLAVOURS[name]
        header = next((line for line in first_lines if line.startswith(FIELDS_PREFIX)), None)
        self.parse = _make_parse(columns, header, split, fix_agent, taken_to_ms, name == CLOUDFRONT)


def _split_tabs(line: str) -> list[str]:
    return line.split("\t")


def _split_spaces(line: str) -> list[str]:
    if '"' in line:
        return _TOKENS(line)
    return line.split()


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def _as_is(value: str) -> str:
    return value


def _iis_agent(value: str) -> str:
    return value.replace("+", " ")


def _cloudfront_agent(value: str) -> str:
    # CloudFront URL-encodes the user agent, and its "%" signs once more.
    return unquote(unquote(value))


_KEYS = ("date", "time", "ip", "method", "stem", "query", "uri", "status", "length", "host", "agent", "referrer",
         "user", "taken", "event", "stream")  # fmt: skip


def _plan(columns: dict, header: str) -> tuple[tuple[int, ...] | None, int]:
    """Column index of each of ``_KEYS`` (-1: absent) and the number of columns a line needs."""
    fields = fields_of(header)
    plan = tuple(next((fields.index(c) for c in columns.get(key, ()) if c in fields), -1) for key in _KEYS)
    date, time, ip, _m, stem, _q, uri = plan[:7]
    if date < 0 or time < 0 or ip < 0 or (stem < 0 and uri < 0):
        return None, 0  # no usable columns: data lines stay unparseable until a better header
    return plan, max(plan) + 1


# flavour -> (column names, line splitter, user agent clean-up, time-taken unit)
_FLAVOURS = {
    W3C_EXTENDED: (_COLUMNS, _split_spaces, _as_is, seconds_to_ms),
    IIS: (_COLUMNS, _split_spaces, _iis_agent, millis_to_ms),
    CLOUDFRONT: (_CLOUDFRONT_COLUMNS, _split_tabs, _cloudfront_agent, seconds_to_ms),
}


def _make_parse(columns, header, split, fix_agent, taken_to_ms, cloudfront: bool):
    state = [None, 0]  # plan, width; replaced by each "#Fields:" line
    if header is not None:
        state[:] = _plan(columns, header)
    dates: dict[str, str] = {}
    agents: dict[str, str] = {}
    hit = Hit
    earliest, latest = cdt_bounds()
    unquote_cells = split is _split_spaces  # tab-separated CloudFront values are never quoted

    def parse(line: str, line_no: int):
        if line[:1] == "#":
            if line.startswith(FIELDS_PREFIX):
                state[:] = _plan(columns, line)
            return SKIP_LINE
        plan, width = state
        if plan is None:
            return invalid_reason(line)
        cells = split(line)
        if len(cells) < width:
            return invalid_reason(line)
        if unquote_cells and '"' in line:
            cells = [_unquoted(c) for c in cells]
        cells.append("-")  # what an absent column (index -1) reads
        (i_date, i_time, i_ip, i_method, i_stem, i_query, i_uri, i_status, i_length, i_host, i_agent, i_referrer,
         i_user, i_taken, i_event, i_stream) = plan  # fmt: skip
        stamp = cells[i_date] + " " + cells[i_time]
        cdt = dates.get(stamp)
        if cdt is None:
            cdt = iso_cdt(stamp)
            if cdt is None:
                return BAD_DATE
            if cdt < earliest or cdt > latest:
                return DATE_OUT_OF_RANGE
            if len(dates) >= CACHE_LIMIT:
                dates.clear()
            dates[stamp] = cdt
        ip = cells[i_ip]
        if not ip or ip == "-":
            return UNPARSEABLE
        stem = cells[i_stem]
        if stem == "-":
            stem = _path_of_uri(cells[i_uri])
        elif cloudfront and stem.startswith("rtmp:/"):
            stem = stem[5:]
        if not stem:
            return UNPARSEABLE
        query = cells[i_query]
        path = stem + "?" + query if query != "-" and query else stem
        extra = None
        if i_status >= 0:
            status = to_status(cells[i_status])
            if status is None:
                return BAD_STATUS
        else:
            status = 200 if cloudfront else 0  # CloudFront streaming lines have no status
        if cloudfront and i_event >= 0:
            extra = {
                "event_category": "cloudfront_rtmp",
                "event_action": dash(cells[i_event]) or None,
                "event_name": dash(cells[i_stream]) or None,
            }
        raw_agent = cells[i_agent]
        agent = agents.get(raw_agent)
        if agent is None:
            agent = dash(fix_agent(raw_agent))
            if len(agents) >= CACHE_LIMIT:
                agents.clear()
            agents[raw_agent] = agent
        host = cells[i_host]
        host = "" if host == "-" else host.lower().strip(".")
        return hit(
            line_no,
            ip,
            cdt,
            dash(cells[i_method]),
            path,
            status,
            to_length(cells[i_length]),
            host,
            dash(cells[i_referrer]),
            agent,
            dash(cells[i_user]),
            taken_to_ms(cells[i_taken]),
            extra,
        )

    return parse


def _path_of_uri(uri: str) -> str:
    """``cs-uri`` may be a full URL: keep path and query."""
    if uri == "-":
        return ""
    scheme = uri.find("://")
    if scheme >= 0:
        slash = uri.find("/", scheme + 3)
        return uri[slash:] if slash >= 0 else "/"
    return uri
