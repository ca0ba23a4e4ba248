"""A fake Opencast engage/admin node on loopback, for the harvester's tests.

It enforces HTTP Digest with a real challenge and response check (MD5, qop=auth) and, like
Matterhorn, answers a request without ``X-Requested-Auth: Digest`` with a redirect to its login
page. It reproduces the JSON quirks (a single action as an object, no ``action`` key when empty,
totals as strings), can behave like upstream Opencast (``start``/``end`` silently ignored), and
can be told to answer slowly or with a 500.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

UTC = dt.timezone.utc
REALM = "Opencast"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def make_action(action_id: int, created: dt.datetime, mpid: str = "mp-1", *, type: str = "HEARTBEAT",
                is_playing=1, ip: str = "203.0.113.7, 10.0.0.1", user_id="huid-1",
                user_agent: str = "Mozilla/5.0 (X11; Linux x86_64)", inpoint: int = 10) -> dict:
    """An action as the REST endpoint renders it (created with a -05:00 offset, like DCE's)."""
    local = created.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    session = {"sessionId": f"s-{action_id % 3}", "userIp": ip, "userAgent": user_agent}
    if user_id is not None:
        session["userId"] = user_id
    return {
        "id": action_id, "mediapackageId": mpid, "sessionId": session, "inpoint": inpoint,
        "outpoint": inpoint + 30, "length": 30, "type": type, "isPlaying": is_playing,
        "created": local.isoformat(),
    }


def make_episode(mpid: str, *, title: str = "Lecture 1", series: str | None = "20240112345",
                 attachments: bool = True, created: str = "2024-03-01T14:00:00Z") -> dict:
    mediapackage = {"id": mpid, "title": title, "duration": "3600000", "start": "2024-03-01T09:00:00-05:00"}
    if series:
        mediapackage.update(series=series, seriestitle="CSCI E-1")
    if attachments:
        mediapackage["attachments"] = {"attachment": [
            {"type": "presenter/player+preview", "url": f"https://cdn.example/{mpid}/presenter.jpg", "ref": ""},
            {"type": "presentation/segment+preview", "url": f"https://cdn.example/{mpid}/s1.jpg",
             "ref": "track:abc;time=T00:01:00:0F1000"},
        ]}
    return {"id": mpid, "mediapackage": mediapackage, "dcType": "lecture", "dcDescription": "desc",
            "dcCreated": created}


class FakeOpencast:
    def __init__(self, user: str = "harvester", password: str = "not-a-real-secret", *,
                 supports_window: bool = True) -> None:
        self.user, self.password = user, password
        self.supports_window = supports_window
        self.actions: list[dict] = []
        self.episodes: dict[str, dict] = {}
        self.workflows: dict[str, list[dict]] = {}
        self.fail_statuses: list[int] = []  # popped per /usertracking request
        self.slow_requests = 0  # the next N /usertracking requests sleep slow_seconds first
        self.slow_seconds = 1.5
        self.log: list[tuple[str, dict]] = []  # (path, params) of every authenticated request
        self.challenges = 0
        self._nonces: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> FakeOpencast:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                fake._handle(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def requests_to(self, path: str) -> list[dict]:
        return [params for p, params in self.log if p == path]

    # -- HTTP -----------------------------------------------------------------------------

    def _send(self, h: BaseHTTPRequestHandler, status: int, body=None, headers=None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        try:
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the slow-page test)

    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        header = h.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        fields = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
                  for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header[7:])}
        with self._lock:
            known_nonce = fields.get("nonce") in self._nonces
        if not known_nonce or fields.get("username") != self.user or fields.get("uri") != h.path:
            return False
        ha1 = _md5(f"{self.user}:{REALM}:{self.password}")
        ha2 = _md5(f"GET:{fields['uri']}")
        if fields.get("qop") == "auth":
            expected = _md5(f"{ha1}:{fields['nonce']}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{fields['nonce']}:{ha2}")
        return secrets.compare_digest(expected, fields.get("response", ""))

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("X-Requested-Auth") != "Digest":
            self._send(h, 302, headers={"Location": "/login.html"})
            return
        if not self._authorized(h):
            nonce = secrets.token_hex(16)
            with self._lock:
                self._nonces.add(nonce)
                self.challenges += 1
            self._send(h, 401, {"error": "unauthorized"}, {
                "WWW-Authenticate": f'Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5'})
            return
        parts = urlsplit(h.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.log.append((parts.path, params))
        routes = {"/usertracking/actions.json": self._actions, "/search/episode.json": self._search,
                  "/workflow/instances.json": self._workflows}
        route = routes.get(parts.path)
        if route is None:
            self._send(h, 404, {"error": "not found"})
            return
        route(h, params)

    # -- endpoints ------------------------------------------------------------------------

    def _actions(self, h, params: dict) -> None:
        with self._lock:
            slow = self.slow_requests > 0
            if slow:  # a slow answer is its own event: the 500 (if any) goes to the next request
                self.slow_requests -= 1
            status = self.fail_statuses.pop(0) if self.fail_statuses and not slow else None
        if slow:
            time.sleep(self.slow_seconds)
        if status:
            self._send(h, status, {"error": "boom"})
            return
        rows = sorted(self.actions, key=lambda a: a["id"])
        if self.supports_window and "start" in params and "end" in params:
            lo = dt.datetime.strptime(params["start"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            hi = dt.datetime.strptime(params["end"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            rows = [a for a in rows if lo <= _created(a) <= hi]
        elif "day" in params:
            day = dt.datetime.strptime(params["day"], "%Y%m%d").date()
            rows = [a for a in rows if _created(a).date() == day]
        limit = int(params.get("limit", 0)) or 10  # upstream: 0 means 10
        offset = int(params.get("offset", 0))
        page = rows[offset:offset + limit]
        body = {"total": str(len(rows)), "offset": str(offset), "limit": str(limit)}
        if len(page) == 1:
            body["action"] = page[0]  # JAXB: a single element is an object
        elif page:
            body["action"] = page
        self._send(h, 200, {"actions": body})

    def _search(self, h, params: dict) -> None:
        results = list(self.episodes.values())
        if "id" in params:
            results = [r for r in results if r["id"] == params["id"]]
        if "createdFrom" in params:
            lo, hi = params["createdFrom"], params.get("createdTo", "9999")
            results = [r for r in results if lo <= r["dcCreated"] <= hi]
        total = len(results)
        offset = int(params.get("offset", 0))
        results = results[offset:offset + int(params.get("limit", 10))]
        body = {"total": str(total), "offset": str(offset)}
        if len(results) == 1:
            body["result"] = results[0]
        elif results:
            body["result"] = results
        self._send(h, 200, {"search-results": body})

    def _workflows(self, h, params: dict) -> None:
        found = self.workflows.get(params.get("mp", ""), [])
        self._send(h, 200, {"workflows": {"totalCount": str(len(found)), "workflow": found}}
                   if found else {"workflows": {"totalCount": "0"}})


def _created(action: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(action["created"]).astimezone(UTC).replace(microsecond=0)
