"""``matomo_replay``: nginx JSON access lines of tracker requests, to be replayed into Matomo.

The lines come from the nginx in front of Matomo (GDS Verify's ``matomo-nginx`` streams in
CloudWatch): each one is a JavaScript-tracker request (``/matomo.php?idsite=1&rec=1&...``)
that Matomo failed to record (usually a 5xx). Replaying one means sending its *original*
tracker parameters again, with the log's IP, time and user agent — what Matomo's
``import_logs.py --replay-tracking`` does.

Differences from ``nginx_json``:

* only ``matomo.php``/``piwik.php`` requests with ``idsite`` in the query string are hits;
  every other line is invalid (reason ``not_tracker``), so nothing but tracker requests is
  ever replayed;
* the hit carries the original query parameters in ``Hit.extra["tracking_params"]``; the
  request builder overlays them on its base parameters
  (:meth:`analytics_ingest.matomo.tracking.RequestBuilder.render`);
* every hit is classified as a page, whatever its status (it *is* a 5xx: that is why it is
  replayed), path or user agent: the parser's :meth:`ReplayParser.stepper` skips the
  classifier. Matomo received the original request and will apply its own bot/exclusion rules
  to the replay exactly as it would have then; our import_logs-style filters (http errors,
  static, bots by substring) describe log lines of a website, not tracker requests. Normal
  imports are untouched: only this format's stepper behaves so. ``Hit.status`` keeps the
  original status.

``matomo_replay_xff`` takes the client IP from the first address of ``http_x_forwarded_for``
(unless ``-``), for an nginx behind a load balancer — the option GDS's fork of import_logs
added; ``matomo_replay`` takes the ``ip`` field, as GDS's replayer did.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from ..hits import Hit
from ..vocabulary import PAGES
from .base import UNPARSEABLE, LineParser, dash, invalid_reason, seconds_to_ms, to_length, to_status
from .timeparse import any_cdt, cached

REPLAY = "matomo_replay"
REPLAY_XFF = "matomo_replay_xff"
NOT_TRACKER = "not_tracker"  # invalid reason: not a matomo.php/piwik.php request with idsite

TRACKER_FILES = ("matomo.php", "piwik.php")
# Parameters never taken from the original request: the engine's own (see tracking.py).
_DROPPED = frozenset({"token_auth"})

_IP = ("ip", "remote_addr", "client_ip")
_XFF = ("http_x_forwarded_for", "x_forwarded_for")
_PATH = ("path", "request_uri")
_DATE = ("date", "time_iso8601", "timestamp")
_AGENT = ("user_agent", "http_user_agent")
_REFERRER = ("referrer", "http_referer", "referer")
_HOST = ("host", "http_host", "server_name")

# nginx's default escaping writes bytes as \xHH, which JSON does not allow.
_HEX_RUN = re.compile(r"(?<!\\)(?:\\x[0-9A-Fa-f]{2})+")


def _unhex(m: re.Match) -> str:
    text = bytes.fromhex(m.group(0).replace("\\x", "")).decode("utf-8", "replace")
    return json.dumps(text)[1:-1]


def load_access_line(line: str) -> dict | None:
    """The JSON object of one nginx access line, or None if it is not one."""
    text = line.strip()
    if text[:1] != "{":
        return None
    if "\\x" in text:
        text = _HEX_RUN.sub(_unhex, text)
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def first_field(obj: dict, keys: tuple[str, ...]):
    for key in keys:
        value = obj.get(key)
        if value is not None and value != "" and value != "-":
            return value
    return None


def tracker_params(path: str) -> dict[str, str] | None:
    """The query parameters of a tracker request path, or None if it is not one.

    Repeated keys: the last wins, as in PHP's ``$_GET`` for plain names.
    """
    stem, sep, query = path.partition("?")
    if not sep or stem.rstrip("/").rsplit("/", 1)[-1].lower() not in TRACKER_FILES:
        return None
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not params.get("idsite"):
        return None
    return params


def client_ip(obj: dict, use_xff: bool) -> str:
    if use_xff:
        forwarded = first_field(obj, _XFF)
        if forwarded is not None:
            first = str(forwarded).split(",")[0].strip()
            if first and first != "-":
                return first
    ip = first_field(obj, _IP)
    return "" if ip is None else str(ip)


class ReplayParser(LineParser):
    """Parser of the ``matomo_replay`` journal lines (see the module docstring)."""

    field_count = 8

    def __init__(self, name: str = REPLAY) -> None:
        self.name = name
        self.parse = _make_parse(use_xff=name == REPLAY_XFF)

    def stepper(self, classifier, holder: list):
        """Every parsed tracker request is a page: replay mode accepts 4xx/5xx and leaves bot
        and exclusion decisions to Matomo, as the live request would have."""
        parse = self.parse
        hit_type = Hit
        pages = PAGES

        def step(line: str, line_no: int) -> str:
            result = parse(line, line_no)
            if result.__class__ is hit_type:
                holder[0] = result
                return pages
            return result

        return step


def _make_parse(use_xff: bool):
    cdt_of = cached(any_cdt)

    def parse(line: str, line_no: int):
        obj = load_access_line(line)
        if obj is None:
            return invalid_reason(line)
        path = first_field(obj, _PATH)
        params = tracker_params(str(path)) if path is not None else None
        if params is None:
            return NOT_TRACKER
        ip = client_ip(obj, use_xff)
        date = first_field(obj, _DATE)
        if not ip or date is None:
            return UNPARSEABLE
        cdt = cdt_of(str(date))
        if cdt is None:
            return cdt_of.reason  # BAD_DATE or DATE_OUT_OF_RANGE
        for key in _DROPPED:
            params.pop(key, None)
        status = to_status(first_field(obj, ("status",)))
        host = dash(str(first_field(obj, _HOST) or "")).lower().strip(".")
        return Hit(
            line_no,
            ip,
            cdt,
            str(first_field(obj, ("method", "request_method")) or "GET"),
            str(path),
            status if status is not None else 0,
            to_length(first_field(obj, ("length", "body_bytes_sent"))),
            host,
            dash(str(first_field(obj, _REFERRER) or "")),
            dash(str(first_field(obj, _AGENT) or "")),
            # uid keeps one user's hits in one lane (in order) and lets settling find them.
            params.get("uid", ""),
            seconds_to_ms(first_field(obj, ("generation_time_milli", "request_time"))),
            {"tracking_params": params},
        )

    return parse


__all__ = ["NOT_TRACKER", "REPLAY", "REPLAY_XFF", "ReplayParser", "load_access_line", "tracker_params"]
