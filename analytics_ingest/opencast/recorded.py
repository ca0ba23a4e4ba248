"""A recorded Opencast engage node: ``OPENCAST_URL=file:<folder>``.

:class:`RecordedEngage` stands in for the client's ``requests.Session`` and answers the endpoints
the harvester uses from recorded JSON bodies in the folder, with the server's semantics, so the
client's paging, window-mode probe, JAXB quirks, enrichment and journal run unchanged:

- ``opencast-useractions-*.json``: bodies of ``/usertracking/actions.json``
  (``{"actions": {"action": [...]}}``); all files' actions together are the server's table,
  answered by ``start``/``end`` (DCE's fork: ``YYYYMMDDHHmmss`` in the server's zone) or ``day``,
  ``limit``/``offset`` paged, a single action as an object, ``total`` as a string;
- ``opencast-episodes*.json``: bodies of ``/search/episode.json`` (``{"search-results":
  {"result": [...]}}``), answered by ``id`` or ``createdFrom``/``createdTo`` (on ``dcCreated``).

Anything else answers 404. Nothing leaves the machine; no user or password is needed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError

SCHEME = "file:"
SERVER_TIME_FORMAT = "%Y%m%d%H%M%S"


def recorded_folder(url: str) -> Path | None:
    """``file:<folder>`` (or ``file:///folder``) → the folder; an http(s) URL → None."""
    if not url or not url.startswith(SCHEME):
        return None
    text = url[len(SCHEME):]
    if text.startswith("//"):
        text = urlsplit(url).path
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"OPENCAST_URL={url!r}: {folder} is not a folder of recorded Opencast answers")
    return folder


class _Answer:
    """The part of ``requests.Response`` the client reads."""

    def __init__(self, status_code: int, body: dict) -> None:
        self.status_code, self._body = status_code, body
        self.headers = {"content-type": "application/json"}

    def json(self) -> dict:
        return json.loads(json.dumps(self._body))  # a copy: callers may mutate what they get


def _list(value) -> list:
    if value in (None, ""):
        return []
    return value if isinstance(value, list) else [value]


def _load(folder: Path, pattern: str, outer: str, inner: str) -> list[dict]:
    rows: list[dict] = []
    for path in sorted(folder.glob(pattern)):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"recorded Opencast file {path} is not readable JSON ({exc.__class__.__name__})") from None
        rows += _list(((body or {}).get(outer) or {}).get(inner))
    return rows


def _moment(text: str, default_tz: dt.tzinfo) -> dt.datetime:
    text = str(text).strip()
    moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=default_tz)


class RecordedEngage:
    """A ``requests.Session`` stand-in serving a folder of recorded answers (see the module doc)."""

    def __init__(self, folder: str | Path, server_tz: dt.tzinfo = dt.timezone.utc) -> None:
        self.folder, self.server_tz = Path(folder), server_tz
        self.headers: dict[str, str] = {}
        self.auth = None
        self.actions = sorted(_load(self.folder, "opencast-useractions-*.json", "actions", "action"),
                              key=lambda a: int(a["id"]))
        self.episodes = _load(self.folder, "opencast-episodes*.json", "search-results", "result")
        self.log: list[tuple[str, dict]] = []

    def get(self, url: str, params=None, timeout=None) -> _Answer:
        params = {k: str(v) for k, v in (params or {}).items()}
        self.log.append((url, params))
        if url.endswith("/usertracking/actions.json"):
            return _Answer(200, self._actions(params))
        if url.endswith("/search/episode.json"):
            return _Answer(200, self._search(params))
        return _Answer(404, {"error": "not recorded"})

    def _created(self, action: dict) -> dt.datetime:
        return _moment(action["created"], self.server_tz).replace(microsecond=0)

    def _actions(self, params: dict) -> dict:
        rows = self.actions
        if "start" in params and "end" in params:
            lo, hi = (dt.datetime.strptime(params[k], SERVER_TIME_FORMAT).replace(tzinfo=self.server_tz)
                      for k in ("start", "end"))
            rows = [a for a in rows if lo <= self._created(a) <= hi]
        elif "day" in params:
            day = dt.datetime.strptime(params["day"], "%Y%m%d").date()
            rows = [a for a in rows if self._created(a).astimezone(self.server_tz).date() == day]
        limit = int(params.get("limit") or 0) or 10  # upstream: 0 means 10
        offset = int(params.get("offset") or 0)
        return {"actions": _page(rows, offset, limit, "action")}

    def _search(self, params: dict) -> dict:
        results = self.episodes
        if "id" in params:
            results = [r for r in results if r.get("id") == params["id"]]
        if "createdFrom" in params:
            lo = _moment(params["createdFrom"], dt.timezone.utc)
            hi = _moment(params.get("createdTo") or "9999-12-31T23:59:59Z", dt.timezone.utc)
            results = [r for r in results if r.get("dcCreated") and lo <= _moment(r["dcCreated"], dt.timezone.utc) <= hi]
        limit = int(params.get("limit") or 0) or 10
        return {"search-results": _page(results, int(params.get("offset") or 0), limit, "result")}


def _page(rows: list[dict], offset: int, limit: int, key: str) -> dict:
    page = rows[offset:offset + limit]
    body = {"total": str(len(rows)), "offset": str(offset), "limit": str(limit)}
    if len(page) == 1:
        body[key] = page[0]  # JAXB: a single element is an object
    elif page:
        body[key] = page
    return body


__all__ = ["SCHEME", "RecordedEngage", "recorded_folder"]
