"""A recorded CloudWatch Logs log group, answering ``filter_log_events`` as the service would.

``CLOUDWATCH_API=recorded:<file.json>`` (and the embedded default's demo) fetches through
:func:`~analytics_ingest.cloudwatch.fetch.fetch_window_filter_events` with this object in place of
the boto3 client, so the recorded events take the same path as live ones: the predicate, the
event ids, the store and the replay journal. No AWS call, no credentials.

The file holds the raw events of a log group (every stream, no filter pattern) as
``filter_log_events`` returns them::

    {"logGroupName": "matomo", "pageSize": 25,
     "events": [{"logStreamName": ..., "timestamp": <ms>, "message": ..., "ingestionTime": ..., "eventId": ...}]}

What the service does server-side is done here too: the inclusive ``startTime``/``endTime``
range, ``logStreamNames``, a filter pattern of quoted terms or bare words (every term a
substring of the message; other pattern syntax is refused), and paging by ``nextToken``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import ConfigError

PREFIX = "recorded:"
_TERM = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s"]+)')


class RecordedCallError(Exception):
    """An error as botocore raises it (``response["Error"]["Code"]``), for the fetcher's mapping."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.response = {"Error": {"Code": code, "Message": message}}


def _terms(pattern: str) -> list[str]:
    if any(c in pattern for c in "{}[]?*") or re.search(r"(^|\s)[-+]", pattern):
        raise RecordedCallError("InvalidParameterException",
                                f"a recorded log group understands quoted terms and words only, not {pattern!r}")
    return [m.group(1).replace('\\"', '"') if m.group(1) is not None else m.group(2)
            for m in _TERM.finditer(pattern)]


class RecordedLogsClient:
    """Stands in for ``boto3.client("logs")`` where only ``filter_log_events`` is needed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"recorded CloudWatch file {self.path} not found; fix CLOUDWATCH_API=recorded:<path>") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"recorded CloudWatch file {self.path} is not readable JSON ({exc.__class__.__name__})") from None
        events = data.get("events") if isinstance(data, dict) else None
        if not isinstance(events, list) or not data.get("logGroupName"):
            raise ConfigError(f"recorded CloudWatch file {self.path} needs 'logGroupName' and a list of 'events'")
        self.log_group = str(data["logGroupName"])
        self.page_size = max(1, int(data.get("pageSize") or 50))
        self.events = sorted(events, key=lambda e: (int(e["timestamp"]), str(e.get("eventId", ""))))
        self.calls: list[dict] = []

    def filter_log_events(self, *, logGroupName: str, startTime: int | None = None, endTime: int | None = None,
                          filterPattern: str | None = None, logStreamNames=None, nextToken: str | None = None,
                          limit: int | None = None, **_ignored) -> dict:
        self.calls.append({"logGroupName": logGroupName, "startTime": startTime, "endTime": endTime,
                           "filterPattern": filterPattern, "nextToken": nextToken})
        if logGroupName != self.log_group:
            raise RecordedCallError("ResourceNotFoundException", f"the recording holds log group {self.log_group!r}")
        terms = _terms(filterPattern) if filterPattern else []
        streams = set(logStreamNames) if logStreamNames else None
        selected = [
            e for e in self.events
            if (startTime is None or int(e["timestamp"]) >= int(startTime))
            and (endTime is None or int(e["timestamp"]) <= int(endTime))
            and (streams is None or e.get("logStreamName") in streams)
            and all(term in str(e.get("message", "")) for term in terms)
        ]
        size = min(self.page_size, int(limit)) if limit else self.page_size
        offset = int(nextToken.rsplit("/", 1)[-1]) if nextToken else 0
        page = {"events": [dict(e) for e in selected[offset:offset + size]],
                "searchedLogStreams": sorted({e.get("logStreamName", "") for e in self.events})}
        if offset + size < len(selected):
            page["nextToken"] = f"recorded/{offset + size}"
        return page


def recording_path(api: str) -> Path | None:
    """``recorded:<path>`` → the path; any other API name → None."""
    if not api.lower().startswith(PREFIX):
        return None
    text = api[len(PREFIX):].strip()
    if not text:
        raise ConfigError("CLOUDWATCH_API=recorded:<path> needs the path of a recorded log group (JSON)")
    return Path(text).expanduser()


__all__ = ["PREFIX", "RecordedCallError", "RecordedLogsClient", "recording_path"]
