"""nginx JSON access logs: one JSON object per line.

Keys of import_logs' documented ``nginx_json`` layout (ip, host, path, status, referrer,
user_agent, length, generation_time_milli — which, despite its name, is in seconds — and date),
and the usual nginx variable names people log instead (remote_addr, request_uri,
time_iso8601, http_user_agent, http_referer, body_bytes_sent, request_time, ...).
"""

from __future__ import annotations

import json
import re

from ..hits import Hit
from .base import BAD_STATUS, UNPARSEABLE, LineParser, dash, invalid_reason, seconds_to_ms, to_length, to_status
from .timeparse import any_cdt, cached

_IP = ("ip", "remote_addr", "client_ip")
_HOST = ("host", "http_host", "server_name")
_PATH = ("path", "request_uri")
_URI = ("uri",)  # path without query; "args"/"query_string" hold the query
_QUERY = ("args", "query_string")
_REQUEST = ("request",)  # "GET /x HTTP/1.1"
_METHOD = ("method", "request_method")
_STATUS = ("status",)
_REFERRER = ("referrer", "http_referer", "referer")
_AGENT = ("user_agent", "http_user_agent")
_LENGTH = ("length", "body_bytes_sent", "bytes_sent")
_SECONDS = ("generation_time_milli", "request_time")  # both in seconds in practice
_DATE = ("date", "time_iso8601", "time_local", "timestamp")
_USER = ("userid", "remote_user", "user_id")

# nginx's default escaping writes bytes as \xHH, which JSON does not allow.
_HEX_RUN = re.compile(r"(?<!\\)(?:\\x[0-9A-Fa-f]{2})+")


def _unhex(m: re.Match) -> str:
    text = bytes.fromhex(m.group(0).replace("\\x", "")).decode("utf-8", "replace")
    return json.dumps(text)[1:-1]


def _first(obj: dict, keys: tuple[str, ...]):
    for key in keys:
        value = obj.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(value) -> str:
    if value is None:
        return ""
    return dash(value if isinstance(value, str) else str(value))


class NginxJsonParser(LineParser):
    name = "nginx_json"
    field_count = 11

    def __init__(self) -> None:
        self.parse = _make_parse()


def _make_parse():
    loads = json.loads
    cdt_of = cached(any_cdt)
    hit = Hit

    def parse(line: str, line_no: int):
        text = line.lstrip()
        if text[:1] != "{":
            return invalid_reason(line)
        if "\\x" in text:
            text = _HEX_RUN.sub(_unhex, text)
        try:
            obj = loads(text)
        except ValueError:
            return UNPARSEABLE
        if not isinstance(obj, dict):
            return UNPARSEABLE
        ip = _text(_first(obj, _IP))
        method = _text(_first(obj, _METHOD))
        path = _first(obj, _PATH)
        if path is None:
            uri = _first(obj, _URI)
            if uri is not None:
                query = _text(_first(obj, _QUERY))
                path = f"{uri}?{query}" if query else uri
            else:
                request = _text(_first(obj, _REQUEST)).split(" ")
                if len(request) >= 2:
                    method = method or request[0]
                    path = request[1]
        path = _text(path)
        date = _first(obj, _DATE)
        if not ip or not path or date is None:
            return UNPARSEABLE
        cdt = cdt_of(str(date))
        if cdt is None:
            return cdt_of.reason  # BAD_DATE or DATE_OUT_OF_RANGE
        status = to_status(_first(obj, _STATUS))
        if status is None:
            return BAD_STATUS
        host = _text(_first(obj, _HOST))
        if host:
            host = host.lower().strip(".")
        return hit(
            line_no,
            ip,
            cdt,
            method,
            path,
            status,
            to_length(_first(obj, _LENGTH)),
            host,
            _text(_first(obj, _REFERRER)),
            _text(_first(obj, _AGENT)),
            _text(_first(obj, _USER)),
            seconds_to_ms(_first(obj, _SECONDS)),
            None,
        )

    return parse
