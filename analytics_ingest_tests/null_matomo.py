#!/usr/bin/env python3
"""A light loopback endpoint that answers like Matomo's bulk tracking, for benchmarks.

    python bench/null_matomo.py [--host 127.0.0.1] [--port 0] [--ms-per-post X] [--ms-per-hit Y]

prints ``PORT <n>`` on stdout once it listens, then serves until SIGTERM (or SIGINT), when it
prints ``RECEIVED <total requests> POSTS <n>`` and exits 0.

* ``POST /matomo.php`` or ``/piwik.php``: the body is parsed with ``json.loads`` (a real cost,
  as in Matomo) and its ``requests`` counted; answer ``{"status":"success","tracked":N,
  "invalid":0}``. A body that is not JSON with a ``requests`` list gets 400 and is not counted.
  Nothing is stored and the token is not checked. ``--ms-per-post`` / ``--ms-per-hit`` add a
  simulated server cost (sleep) before answering.
* ``/index.php`` or ``/`` (GET query or POST form), for any token: ``API.getMatomoVersion``,
  ``SitesManager.getSiteFromId`` (any id), ``Live.getLastVisitsDetails`` (always ``[]``),
  ``CoreAdminHome.invalidateArchivedReports``; other methods get Matomo's error shape.

HTTP/1.1 with keep-alive and Content-Length on every answer; one thread per connection. Request
logging is off (query strings may carry a token).

Importable: ``url, stop, stats = start_null_matomo()`` runs it in a daemon thread; ``stats`` has
``requests``, ``posts``, ``api_calls``, ``bad_posts``, ``connections`` and ``snapshot()``;
``stop()`` shuts it down.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

VERSION = "4.12.3"
BULK_PATHS = ("/matomo.php", "/piwik.php")


class Stats:
    """Thread-safe counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.posts = 0
        self.api_calls = 0
        self.bad_posts = 0
        self.connections = 0

    def add(self, field: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, field, getattr(self, field) + n)

    def snapshot(self) -> dict:
        with self._lock:
            return {"requests": self.requests, "posts": self.posts, "api_calls": self.api_calls,
                    "bad_posts": self.bad_posts, "connections": self.connections}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    stats: Stats
    ms_per_post = 0.0
    ms_per_hit = 0.0

    def handle_error(self, request, client_address) -> None:
        pass  # a client hanging up is not news; never print


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK stall every answer by ~40 ms (real servers cork or writev).
    disable_nagle_algorithm = True
    server_version = "Apache"
    sys_version = ""
    timeout = 300
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.stats.add("connections")

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status: int, payload, ctype: str = "application/json") -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        split = urlsplit(self.path)
        body = self._body()
        if split.path in BULK_PATHS:
            self._bulk(body)
        else:
            self._api(split.query, body)

    def do_GET(self) -> None:  # noqa: N802
        split = urlsplit(self.path)
        self._body()
        if split.path in BULK_PATHS:
            self._send(200, b"<html><body>Matomo (null)</body></html>", "text/html")
        else:
            self._api(split.query, b"")

    def _bulk(self, body: bytes) -> None:
        stats = self.server.stats
        try:
            reqs = json.loads(body)["requests"]
            if not isinstance(reqs, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            stats.add("bad_posts")
            self._send(400, {"status": "error", "tracked": 0, "invalid": 0})
            return
        n = len(reqs)
        delay = self.server.ms_per_post + self.server.ms_per_hit * n
        if delay > 0:
            time.sleep(delay / 1000.0)
        with stats._lock:
            stats.requests += n
            stats.posts += 1
        self._send(200, {"status": "success", "tracked": n, "invalid": 0})

    def _api(self, query: str, body: bytes) -> None:
        self.server.stats.add("api_calls")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        method = params.get("method", "")
        if method in ("API.getMatomoVersion", "API.getPiwikVersion"):
            result = {"value": VERSION}
        elif method == "SitesManager.getSiteFromId":
            idsite = params.get("idSite", "1")
            result = {"idsite": idsite, "name": f"Bench {idsite}", "main_url": "https://example.org",
                      "timezone": "UTC", "currency": "USD", "type": "website", "ecommerce": "0",
                      "sitesearch": "1", "excluded_ips": "", "excluded_parameters": "", "group": ""}
        elif method == "Live.getLastVisitsDetails":
            result = []
        elif method == "CoreAdminHome.invalidateArchivedReports":
            result = {"result": "success", "message": "Success."}
        else:
            result = {"result": "error", "message": f"The method '{method}' is not served by null Matomo."}
        self._send(200, result)


def _make_server(host: str, port: int, ms_per_post: float, ms_per_hit: float) -> _Server:
    server = _Server((host, port), _Handler)
    server.stats = Stats()
    server.ms_per_post = ms_per_post
    server.ms_per_hit = ms_per_hit
    return server


def start_null_matomo(host: str = "127.0.0.1", port: int = 0, *, ms_per_post: float = 0.0,
                      ms_per_hit: float = 0.0):
    """Run the endpoint in a daemon thread; return ``(url, stop, stats)``."""
    server = _make_server(host, port, ms_per_post, ms_per_hit)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="null-matomo", daemon=True)
    thread.start()
    url = f"http://{server.server_address[0]}:{server.server_address[1]}"
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    return url, stop, server.stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Null Matomo bulk-tracking endpoint for benchmarks.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ms-per-post", type=float, default=0.0, help="simulated server time per POST")
    ap.add_argument("--ms-per-hit", type=float, default=0.0, help="simulated server time per hit")
    args = ap.parse_args(argv)
    server = _make_server(args.host, args.port, args.ms_per_post, args.ms_per_hit)
    # The stop signals are taken by sigwait, not by a handler: a handler that set an Event could
    # run while this thread held the Event's own lock, and hang the bench on its first stop. The
    # mask is set before any thread starts, so that only sigwait ever sees them.
    stops = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    print(f"PORT {server.server_address[1]}", flush=True)
    signal.sigwait(stops)
    server.shutdown()
    server.server_close()
    snap = server.stats.snapshot()
    print(f"RECEIVED {snap['requests']} POSTS {snap['posts']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
