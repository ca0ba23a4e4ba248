"""Deliver batches to Matomo's bulk tracking endpoint, or to an offline outbox.

A batch counts as delivered only when Matomo answers JSON with ``status: success`` and
``tracked + invalid`` equal to the number of requests sent. Everything else is a failed attempt.
Because Matomo does not de-duplicate, a failed attempt that may have reached Matomo (HTTP 5xx,
HTML with 200, timeout, reset, a short count) is settled by looking the batch's ``pv_id`` values
up before anything is sent again; only the missing hits are re-sent.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError, DeliveryError
from .batches import Batch, Delivered
from .retry import RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)


class _Attempt(Exception):
    """One failed attempt. ``maybe_stored``: Matomo may have committed some of the batch."""

    def __init__(self, reason: str, *, maybe_stored: bool, retry_after: float | None = None, maintenance=False):
        super().__init__(reason)
        self.reason = reason
        self.maybe_stored = maybe_stored
        self.retry_after = retry_after
        self.maintenance = maintenance


class HttpSink:
    """POSTs batches to ``<MATOMO_URL>/matomo.php``; one keep-alive session per lane thread."""

    name = "matomo"

    def __init__(self, base_url: str, token: str, lookup, policy: RetryPolicy | None = None, sleep=time.sleep):
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        # queuedtracking=0: a QueuedTracking plugin would answer before storing anything.
        self._path = parts.path + "/matomo.php?queuedtracking=0"
        self._headers = {"Content-Type": "application/json", "User-Agent": "analytics-ingest"}
        self._token_json = json.dumps(token)
        self.lookup = lookup
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self._local = threading.local()
        self.stop_event = threading.Event()
        # Called before every POST; raises (LeaseLost) when this process may no longer send for
        # the file: set by the importer for the time of one file's import.
        self.guard = None

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn_class = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = conn_class(self._netloc, timeout=self.policy.read_timeout)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _body(self, batch: Batch) -> bytes:
        return ('{"requests":[' + batch.text + '],"token_auth":' + self._token_json + "}").encode()

    def _exchange(self, body: bytes) -> tuple[int, dict, bytes]:
        """One POST on this thread's keep-alive connection (http.client: a fraction of the
        per-request CPU of a full HTTP library, which matters at hundreds of POSTs a second)."""
        conn = self._connection()
        try:
            if conn.sock is None:
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.request("POST", self._path, body, self._headers)
            response = conn.getresponse()
            data = response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                self._drop_connection()
            return response.status, headers, data
        except BaseException:
            self._drop_connection()
            raise

    def _post(self, batch: Batch) -> list[int]:
        """One attempt; returns Matomo's invalid positions or raises _Attempt / DeliveryError."""
        try:
            status, headers, data = self._exchange(self._body(batch))
        except (ConnectionRefusedError, socket.gaierror):
            raise _Attempt("connection refused", maybe_stored=False) from None
        except (TimeoutError, socket.timeout):
            raise _Attempt("no answer within the timeout", maybe_stored=True) from None
        except (OSError, http.client.HTTPException) as exc:
            # A reset or a dropped answer: Matomo may have committed the batch.
            raise _Attempt(f"connection lost ({type(exc).__name__})", maybe_stored=True) from None
        if status == 503:
            raise _Attempt(
                "HTTP 503 (maintenance mode?)",
                maybe_stored=False,
                retry_after=parse_retry_after(headers.get("retry-after")),
                maintenance=True,
            )
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        if status in (400, 401, 403) and isinstance(body, dict) and _looks_like_auth_error(body):
            raise DeliveryError(
                "Matomo refused the token for bulk tracking; check MATOMO_API_TOKEN (it needs write access)"
            )
        if status == 400 and body is None:
            raise DeliveryError(
                f"Matomo answered HTTP 400 to bulk tracking at {self.base_url}/matomo.php; "
                "is the BulkTracking plugin enabled?"
            )
        if status != 200:
            raise _Attempt(f"HTTP {status}", maybe_stored=status >= 500,
                           retry_after=parse_retry_after(headers.get("retry-after")))
        if not isinstance(body, dict):
            raise _Attempt("HTTP 200 with a non-JSON answer (QueuedTracking or BulkTracking off?)", maybe_stored=True)
        if body.get("status") != "success":
            raise _Attempt(f"Matomo status {str(body.get('status'))[:40]!r}", maybe_stored=True)
        tracked, invalid = body.get("tracked"), body.get("invalid")
        if not isinstance(tracked, int) or not isinstance(invalid, int) or tracked + invalid != len(batch):
            raise _Attempt(f"Matomo confirmed {tracked}+{invalid} of {len(batch)} requests", maybe_stored=True)
        positions = body.get("invalid_indices") or []
        return [int(p) for p in positions if isinstance(p, int) and 0 <= p < len(batch)]

    def deliver(self, batch: Batch) -> Delivered:
        result = Delivered()
        pending = batch
        if batch.recovery:
            pending = self._settle(batch, result, batch.sent_at)
        attempt = 0
        maintenance_waited = 0.0
        while len(pending):
            if self.stop_event.is_set():
                raise DeliveryError("import stopped")
            if self.guard is not None:
                self.guard()
            sent_at = time.time()
            try:
                invalid_positions = self._post(pending)
            except _Attempt as failure:
                if failure.maintenance:
                    delay = failure.retry_after if failure.retry_after is not None else self.policy.maintenance_delay
                    if maintenance_waited + delay > self.policy.maintenance_max_wait:
                        raise DeliveryError(
                            f"Matomo stayed in maintenance mode (HTTP 503) for {maintenance_waited:.0f} s; "
                            "progress is saved, rerun the import when Matomo is back"
                        ) from None
                    log.warning("Matomo answers 503; waiting %.0f s", delay)
                    maintenance_waited += delay
                    self.sleep(delay)
                    continue
                attempt += 1
                if attempt >= self.policy.max_attempts:
                    raise DeliveryError(
                        f"Matomo did not take a batch after {attempt} attempts (last: {failure.reason}); "
                        "progress is saved, rerun the import to resume"
                    ) from None
                delay = self.policy.delay(attempt, failure.retry_after)
                log.warning("bulk tracking attempt %d failed (%s); retrying in %.1f s", attempt, failure.reason, delay)
                self.sleep(delay)
                if failure.maybe_stored:
                    pending = self._settle(pending, result, sent_at)
                continue
            result.accepted += len(pending) - len(invalid_positions)
            result.rejected_lines.extend(pending.lines[p] for p in invalid_positions)
            break
        return result

    def _settle(self, batch: Batch, result: Delivered, sent_at: float | None) -> Batch:
        """Drop the hits Matomo already has; count them as delivered.

        Only once the batch can no longer commit: Matomo (PHP) goes on with a bulk request after
        the client timed out or died, and a look-up that runs before its commit would send every
        hit again. So: wait until ``settle_wait`` seconds after the batch was sent, then look up
        until two look-ups ``settle_interval`` apart agree.
        """
        if sent_at is not None:
            wait = sent_at + self.policy.settle_wait - time.time()
            if wait > 0:
                log.warning("waiting %.0f s before checking which hits of an interrupted batch Matomo stored "
                            "(it may still be committing them)", wait)
                self.sleep(wait)
        present = self._lookup(batch)
        for _round in range(10):
            self.sleep(self.policy.settle_interval)
            again = self._lookup(batch)
            if again == present:
                break
            present = again
        else:
            raise DeliveryError(
                "Matomo kept storing hits of an interrupted batch for "
                f"{10 * self.policy.settle_interval:.0f} s after it was sent; progress is saved, rerun later"
            )
        if present:
            result.accepted += len(present)
            result.already_present += len(present)
        return batch.without(present)

    def _lookup(self, batch: Batch) -> set[str]:
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                return self.lookup.present(batch)
            except ConfigError:
                raise  # e.g. the Live API is off: retrying cannot help, and the message says what to do
            except Exception as exc:  # the look-up itself failed: Matomo is still unwell
                if attempt == self.policy.max_attempts:
                    raise DeliveryError(
                        f"cannot check which hits Matomo already has ({type(exc).__name__}); "
                        "progress is saved, rerun the import to resume"
                    ) from None
                self.sleep(self.policy.delay(attempt))
        return set()  # pragma: no cover - max_attempts >= 1


def _looks_like_auth_error(body: dict) -> bool:
    text = json.dumps(body).lower()
    return "token" in text or "access" in text or "authenticat" in text


class OutboxSink:
    """The embedded default: the exact requests that would be sent, as JSON lines on disk.

    One file per site, ``<home>/outbox/site-<idsite>.jsonl``. The token is never written.
    """

    name = "outbox"
    _locks: dict[str, threading.Lock] = {}

    def __init__(self, outbox_dir: Path, idsite: int) -> None:
        outbox_dir.mkdir(parents=True, exist_ok=True)
        self.path = outbox_dir / f"site-{idsite}.jsonl"
        self._lock = self._locks.setdefault(str(self.path.resolve()), threading.Lock())
        self.stop_event = threading.Event()
        self.guard = None  # as HttpSink.guard

    def deliver(self, batch: Batch) -> Delivered:
        result = Delivered()
        if self.guard is not None:
            self.guard()
        if batch.recovery:
            present = self.lookup_present(batch)
            result.accepted += len(present)
            result.already_present += len(present)
            batch = batch.without(present)
        if not len(batch):
            return result
        data = ("\n".join(batch.request_texts()) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)  # one write per batch: a crash leaves whole lines or none
            finally:
                os.close(fd)
        result.accepted += len(batch)
        return result

    def lookup_present(self, batch: Batch) -> set[str]:
        """pv_ids of the batch already in the outbox, matched with their time like Matomo's look-up."""
        wanted = {(item[3], item[1]) for item in batch.items}
        if not self.path.exists():
            return set()
        found: set[str] = set()
        with open(self.path, "rb") as fh:
            for line in fh:
                match = _CDT_PV.search(line)
                if match:
                    key = (match.group(1).decode(), match.group(2).decode())
                    if key in wanted:
                        found.add(key[1])
        return found


# The request builder writes cdt and pv_id next to each other (see tracking.RequestBuilder).
_CDT_PV = re.compile(rb'"cdt":"([0-9: -]{19})","pv_id":"([0-9A-Za-z]{6})"')
