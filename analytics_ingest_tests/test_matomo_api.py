"""The Reporting API client on its own: keep-alive connections, redirects, threads, errors.

It talks ``http.client`` (issue #16: loading a full HTTP library cost ~60 ms of every import's
start), so what a library did for it is checked here against real servers on loopback.
"""

from __future__ import annotations

import http.server
import threading

import pytest

from analytics_ingest.errors import ConfigError
from analytics_ingest.matomo.api import MatomoApi, MatomoApiError
from analytics_ingest_tests.fake_matomo import FakeMatomo

TOKEN = "api-test-token-1234567890"


@pytest.fixture
def fake():
    with FakeMatomo(token=TOKEN) as server:
        yield server
        assert server.errors == []


def test_calls_share_one_connection_per_thread_and_survive_a_dropped_one(fake):
    api = MatomoApi(fake.url, TOKEN, timeout=10)
    for _ in range(3):
        assert api.site(1).idsite == 1
    assert fake.connections == 1  # keep-alive: three calls, one TCP connection
    fake.inject("reset", target="api")  # the server drops the connection under the next call
    assert api.site(1).idsite == 1  # sent again on a new connection (a read: safe to repeat)
    assert fake.api_calls == 5 and fake.connections == 2

    answers = []
    threads = [threading.Thread(target=lambda: answers.append(api.site(1).idsite)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [1, 1, 1, 1] and fake.connections == 6  # one connection per thread
    assert fake.api_tokens_in_url == 0


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(301)
        self.send_header("Location", "https://matomo.example.org/index.php")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_redirecting_url_is_one_line_naming_where_it_points_and_the_token_is_not_sent_on():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ConfigError) as exc:
            MatomoApi(url, TOKEN, timeout=5).site(1)
    finally:
        server.shutdown()
        server.server_close()
    text = str(exc.value)
    assert "\n" not in text and TOKEN not in text
    assert "HTTP 301" in text and "https://matomo.example.org/index.php" in text and "MATOMO_URL" in text


def test_unreachable_and_refused_are_one_line_errors(fake):
    with pytest.raises(ConfigError) as exc:
        MatomoApi("http://127.0.0.1:9", TOKEN, timeout=5).site(1)
    assert "not reachable" in str(exc.value) and "ConnectionRefusedError" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        MatomoApi(fake.url, "wrong-token", timeout=5).site(1)
    assert "wrong-token" not in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(MatomoApiError) as exc:
        MatomoApi(fake.url, TOKEN, timeout=5).call("NoSuchModule.method")
    assert TOKEN not in str(exc.value)
