"""The Matomo-event journal of Opencast user actions (:mod:`analytics_ingest.opencast.matomo_events`)
read as a log, so the importer delivers each action to Matomo exactly once like any log line.

Each line becomes a hit whose URL is the episode's player page and whose ``extra`` carries the
event (``e_c`` category, ``e_a`` action type, ``e_n`` episode title or media package id); the
viewer's IP and user agent and the action's UTC time are the hit's own.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from ..hits import Hit
from .base import UNPARSEABLE, LineParser, invalid_reason
from .timeparse import any_cdt, cached

OPENCAST_EVENTS = "opencast_events"
PLAYER_PATH = "/engage/player/watch.html?id="  # Opencast's player page of an episode


class OpencastEventsParser(LineParser):
    name = OPENCAST_EVENTS
    field_count = 4

    def __init__(self) -> None:
        self.parse = _make_parse()


def _make_parse():
    loads = json.loads
    cdt_of = cached(any_cdt)

    def parse(line: str, line_no: int):
        text = line.strip()
        if text[:1] != "{":
            return invalid_reason(line)
        try:
            obj = loads(text)
        except ValueError:
            return UNPARSEABLE
        if not isinstance(obj, dict) or not obj.get("ip") or not obj.get("time") or not obj.get("e_a"):
            return UNPARSEABLE
        cdt = cdt_of(str(obj["time"]))
        if cdt is None:
            return cdt_of.reason  # BAD_DATE or DATE_OUT_OF_RANGE
        mpid = str(obj.get("mpid") or "")
        extra = {"event_category": obj.get("e_c") or "video", "event_action": obj["e_a"],
                 "event_name": obj.get("e_n") or mpid or None}
        return Hit(line_no, str(obj["ip"]), cdt, "GET", PLAYER_PATH + quote(mpid, safe=""), 200, None, "", "",
                   str(obj.get("ua") or ""), "", None, extra)

    return parse
