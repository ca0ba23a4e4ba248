"""One log event fetched from CloudWatch, and its identity.

The identity is a SHA-256 of the event's timestamp and raw message, *also* when CloudWatch
gives an ``eventId``: Logs Insights rows carry only ``@ptr``, ``filter_log_events`` events an
``eventId``, and the same event fetched by either path must get the same id, or a re-fetch
through the other path would store (and replay) it twice. The CloudWatch id is kept as
``source_id`` for tracing.

A ``token_auth`` some client put in a tracker URL is masked in the kept message (the id is
computed before): it is never forwarded to Matomo, so it need not be written to our files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"((?:^|[?&\"\s])token_auth=)[^&\"\s]*")


def redact(message: str) -> str:
    """``token_auth=<anything>`` → ``token_auth=***``."""
    return _TOKEN.sub(r"\1***", message) if "token_auth=" in message else message


def event_id(timestamp_ms: int, message: str) -> str:
    return hashlib.sha256(f"{int(timestamp_ms)}\n{message}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class CloudEvent:
    id: str
    timestamp: int  # epoch milliseconds (CloudWatch's event timestamp)
    message: str  # the raw log line (an nginx JSON access line)
    log_stream: str = ""
    source_id: str = ""  # CloudWatch eventId or Insights @ptr; not the identity (see module doc)

    @classmethod
    def make(cls, timestamp_ms: int, message: str, log_stream: str = "", source_id: str = "") -> "CloudEvent":
        return cls(event_id(timestamp_ms, message), int(timestamp_ms), redact(message), log_stream, source_id)

    def as_dict(self) -> dict:
        return {"id": self.id, "timestamp": self.timestamp, "log_stream": self.log_stream,
                "source_id": self.source_id, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict) -> "CloudEvent":
        return cls(str(data["id"]), int(data["timestamp"]), str(data["message"]),
                   str(data.get("log_stream", "")), str(data.get("source_id", "")))


def unique_sorted(events) -> list[CloudEvent]:
    """Events sorted by (timestamp, id), one per id."""
    seen: dict[str, CloudEvent] = {}
    for event in events:
        seen.setdefault(event.id, event)
    return sorted(seen.values(), key=lambda e: (e.timestamp, e.id))


def parse_insights_timestamp(value: str) -> int | None:
    """An Insights ``@timestamp`` (``"2021-09-28 12:13:14.123"``, UTC; or epoch ms) → epoch ms."""
    text = (value or "").strip()
    if text.isdigit():
        return int(text)
    try:
        parsed = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    delta = parsed - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


__all__ = ["CloudEvent", "event_id", "parse_insights_timestamp", "redact", "unique_sorted"]
