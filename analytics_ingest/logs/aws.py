"""AWS load balancer access logs: classic ELB and Application Load Balancer (ALB).

Both write ``... client:port target:port t_request t_target t_response elb_status
target_status received sent "METHOD scheme://host:port/path?q PROTO" "user agent" ...``; an ALB
line starts with the request type (``http``, ``https``, ``h2``, ``ws``, ...). The time is UTC
with microseconds and a ``Z``. Server time is the target's processing time (seconds).
"""

from __future__ import annotations

import re

from ..hits import Hit
from .base import BAD_STATUS, UNPARSEABLE, LineParser, invalid_reason, seconds_to_ms, to_length, to_status
from .timeparse import cached, iso_cdt

_BODY = (
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?) +\S+ +(\S+) +\S+ +\S+ +(\S+) +\S+ +(\S+) +\S+ +\S+ +(\S+) +"
    r'"([^" ]+) ([^" ]+) ?([^"]*)" +"((?:[^"\\]|\\.)*)"'
)
_ELB = re.compile(r"(?:([a-z0-9]+) +)?" + _BODY)
_ALB = re.compile(r"([a-z0-9]+) +" + _BODY)


def client_ip(field: str) -> str | None:
    """``1.2.3.4:5678``, ``[2001:db8::1]:5678`` or ``2001:db8::1:5678`` → the address."""
    if field.startswith("["):
        end = field.find("]")
        return field[1:end] if end > 1 else None
    colons = field.count(":")
    if colons == 0:
        return field
    address, _, port = field.rpartition(":")
    if not port.isdigit():
        return field
    if colons > 1 and address.endswith(":") and not address.endswith("::"):
        return field  # an IPv6 address without port
    return address


def split_url(url: str) -> tuple[str, str] | None:
    """``https://host:443/p?q`` → (``host``, ``/p?q``); None when it is not an absolute URL."""
    start = url.find("://")
    if start < 0:
        return None
    rest = url[start + 3 :]
    slash = rest.find("/")
    authority, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    if "@" in authority:
        authority = authority.rsplit("@", 1)[1]
    if authority.startswith("["):
        host = authority[1 : authority.find("]")] if "]" in authority else authority
    else:
        host = authority.split(":", 1)[0]
    return host.lower().strip("."), path


class AwsParser(LineParser):
    def __init__(self, name: str) -> None:
        self.name = name
        self.field_count = 10 if name == "alb" else 9
        self.parse = _make_parse(_ALB if name == "alb" else _ELB)


def _make_parse(regex):
    match = regex.match
    cdt_of = cached(iso_cdt)
    hit = Hit

    def parse(line: str, line_no: int):
        m = match(line)
        if m is None:
            return invalid_reason(line)
        _kind, stamp, client, target_time, status, sent, method, url, _proto, agent = m.groups()
        ip = client_ip(client)
        parts = split_url(url)
        if not ip or parts is None:
            return UNPARSEABLE
        cdt = cdt_of(stamp)
        if cdt is None:
            return cdt_of.reason  # BAD_DATE or DATE_OUT_OF_RANGE
        code = to_status(status)
        if code is None:
            return BAD_STATUS
        host, path = parts
        return hit(
            line_no,
            ip,
            cdt,
            method,
            path,
            code,
            to_length(sent),
            host,
            "",
            "" if agent == "-" else agent,
            "",
            seconds_to_ms(target_time),
            None,
        )

    return parse
