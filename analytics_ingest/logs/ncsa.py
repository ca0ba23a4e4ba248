"""Apache/nginx NCSA formats: common, combined, and their virtual-host-prefixed variants.

Each line is tried against a strict, fast regular expression first (ASCII character classes,
single-character negated classes, no backtracking-prone groups: this is the hot path of a whole
import). Lines it rejects — escaped quotes, hostnames instead of IPs, odd request lines — get a
second, lenient expression that accepts what Matomo's importer accepts. Both capture the same
ten groups in the same order.
"""

from __future__ import annotations

import re

from ..hits import Hit
from ..vocabulary import DOWNLOADS, FILTERED, PAGES
from .base import BAD_DATE, LineParser, invalid_reason
from .timeparse import CACHE_LIMIT, DATE_OUT_OF_RANGE, apache_cdt_by_minute, cdt_bounds

# -- fast expressions: the common case of a well-formed line ---------------------------------
_F_HOST = r"([A-Za-z0-9_.-]*)(?::[0-9]+)? "
_F_NO_HOST = r"()"
_F_COMMON = (
    r'([0-9A-Fa-f.:]+) [^ ]+ ([^ ]+) \[([^\]]+)\] "([A-Z]+) ([^ ]+) HTTP/[0-9.]+" ([0-9]{3}) ([0-9]+|-)'
)
# A quoted value cut at an escaped quote (\") would end in a backslash: the look-behind sends
# such lines to the lenient expression. Single-character negated classes ([^"]) are much faster
# in the re engine than multi-character ones ([^"\\]).
_F_AGENT = r' "([^"]*)(?<!\\)" "([^"]*)(?<!\\)"(?:$| )'
_F_NO_AGENT = r"()()(?:$| )"

# -- lenient expressions: the same groups, import_logs' acceptance ----------------------------
_S_HOST = r"([\w.-]*)(?::\d+)?\s+"
_S_NO_HOST = r"()"
_S_COMMON = r'([\w*.:-]+)\s+\S+\s+(\S+)\s+\[([^\]]*)\]\s+"(\S+)\s+(.*?)\s+\S+"\s+(\d+)\s+(\S+)'
_S_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_S_AGENT = r"\s+" + _S_QUOTED + r"\s+" + _S_QUOTED
_S_NO_AGENT = r"()()"

# name -> (has host prefix, has referrer and user agent, field count)
VARIANTS = {
    "common": (False, False, 7),
    "combined": (False, True, 9),
    "common_vhost": (True, False, 8),
    "common_complete": (True, True, 10),
}

_BUILD = "<build the hit>"  # parse()'s own "category": always build the Hit


class NcsaParser(LineParser):
    def __init__(self, name: str) -> None:
        has_host, has_agent, self.field_count = VARIANTS[name]
        self.name = name
        fast = re.compile((_F_HOST if has_host else _F_NO_HOST) + _F_COMMON + (_F_AGENT if has_agent else _F_NO_AGENT))
        slow = re.compile((_S_HOST if has_host else _S_NO_HOST) + _S_COMMON + (_S_AGENT if has_agent else _S_NO_AGENT))
        self._matchers = (fast.match, slow.match)
        #: The strict expression alone: its ten groups are those of every line it matches
        #: (``weblogs.ncsa_lines`` reads them without the stepper).
        self.fast_match = fast.match
        holder: list = [None]
        step = _make_step(*self._matchers, lambda path, status, agent, host: _BUILD, holder, (_BUILD,))

        def parse(line: str, line_no: int):
            result = step(line, line_no)
            return holder[0] if result is _BUILD else result

        self.parse = parse

    def stepper(self, classifier, holder: list):
        # Classify the raw fields; build a Hit only for lines that need one.
        return _make_step(*self._matchers, classifier.decide, holder, (PAGES, DOWNLOADS, FILTERED))


def _make_step(fast, slow, decide, holder: list, with_hit: tuple[str, ...]):
    dates: dict[str, str] = {}
    date_of = dates.get
    cdt_of = apache_cdt_by_minute()
    statuses: dict[str, int] = {}
    status_of = statuses.get
    hit = Hit
    keep = frozenset(with_hit)
    earliest, latest = cdt_bounds()

    def step(line: str, line_no: int) -> str:
        m = fast(line) or slow(line)
        if m is None:
            return invalid_reason(line)
        host, ip, user, stamp, method, path, status, length, referrer, agent = m.groups()
        cdt = date_of(stamp)
        if cdt is None:
            cdt = cdt_of(stamp)
            if cdt is None:
                return BAD_DATE
            if cdt < earliest or cdt > latest:
                return DATE_OUT_OF_RANGE
            if len(dates) >= CACHE_LIMIT:
                dates.clear()
            dates[stamp] = cdt
        code = status_of(status)
        if code is None:
            code = int(status)
            if len(statuses) < 1000:
                statuses[status] = code
        if host:
            host = host.lower().strip(".")
        if agent == "-":
            agent = ""
        category = decide(path, code, agent, host)
        if category not in keep:
            return category
        if length == "-":
            size = None
        else:
            try:
                size = int(length)
            except ValueError:
                size = None
        holder[0] = hit(
            line_no,
            ip,
            cdt,
            method,
            path,
            code,
            size,
            host,
            "" if referrer == "-" else referrer,
            agent,
            "" if user == "-" else user,
            None,
            None,
        )
        return category

    return step
