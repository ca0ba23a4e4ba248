"""What a "missed" Matomo tracker request is, as a Logs Insights query and as a Python predicate.

A missed event is one nginx JSON access line from the nginx in front of Matomo (log stream
matching ``matomo-nginx``) for a JavaScript-tracker request of the site (``idsite=<N>`` and
``rec=1`` in the query string) that got a status >= 500, excluding the load balancer's health
check and the smoke test. GDS compared the status with the *string* ``'500'``; here it is a
number. Both renderings say the same thing: the Insights query runs server-side, and the
predicate re-checks every row (Insights' regexes are looser than a parsed query string, and
``filter_log_events`` cannot express it at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from ..errors import ConfigError
from ..logs.base import to_status
from ..logs.replay import TRACKER_FILES, load_access_line

DEFAULT_LOG_GROUP = "matomo"
DEFAULT_STREAM_PATTERN = "matomo-nginx"
DEFAULT_MIN_STATUS = 500
DEFAULT_EXCLUDED_AGENTS = ("ELB-HealthChecker/2.0", "Smokey Test")
INSIGHTS_MAX_ROWS = 10_000  # the most rows one Insights query returns

_AGENT_KEYS = ("user_agent", "http_user_agent")
_PATH_KEYS = ("path", "request_uri")


def _insights_string(value: str) -> str:
    """A double-quoted Insights string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _insights_regex(pattern: str) -> str:
    """A ``/regex/`` literal: a slash inside the pattern must be escaped."""
    return "/" + re.sub(r"(?<!\\)/", r"\\/", pattern) + "/"


@dataclass(frozen=True)
class MissedEventQuery:
    site_id: int
    log_group: str = DEFAULT_LOG_GROUP
    stream_pattern: str = DEFAULT_STREAM_PATTERN  # regex searched in the log stream name
    min_status: int = DEFAULT_MIN_STATUS  # compared as a number
    excluded_user_agents: tuple[str, ...] = DEFAULT_EXCLUDED_AGENTS  # exact matches

    def __post_init__(self) -> None:
        try:
            site = int(self.site_id)
        except (TypeError, ValueError):
            site = 0
        if site <= 0:
            raise ConfigError(f"site id must be a positive integer (Matomo idsite), got {self.site_id!r}")
        object.__setattr__(self, "site_id", site)
        if not self.log_group:
            raise ConfigError("the CloudWatch log group name is empty; set it (GDS used 'matomo')")
        try:
            status = int(self.min_status)
        except (TypeError, ValueError):
            status = -1
        if not 100 <= status <= 999:
            raise ConfigError(f"status threshold must be an HTTP status between 100 and 999, got {self.min_status!r}")
        object.__setattr__(self, "min_status", status)
        try:
            object.__setattr__(self, "_stream_re", re.compile(self.stream_pattern or ""))
        except re.error as exc:
            raise ConfigError(
                f"log stream pattern {self.stream_pattern!r} is not a valid regex ({exc}); fix it"
            ) from None
        object.__setattr__(self, "excluded_user_agents", tuple(self.excluded_user_agents))

    # -- Logs Insights ---------------------------------------------------------------------------
    def insights_query(self, limit: int = INSIGHTS_MAX_ROWS) -> str:
        """The Logs Insights query string (fields @timestamp, @message, @logStream, @ptr)."""
        lines = ["fields @timestamp, @message, @logStream, @ptr"]
        if self.stream_pattern:
            lines.append(f"filter @logStream like {_insights_regex(self.stream_pattern)}")
        lines.append(f"filter status >= {self.min_status}")  # a number: not GDS's string '500'
        for agent in self.excluded_user_agents:
            lines.append(f"filter user_agent != {_insights_string(agent)}")
        lines.append(r"filter path like /(matomo|piwik)\.php\?/")
        lines.append(f"filter path like /[?&]idsite={self.site_id}(&|$)/")
        lines.append("filter path like /[?&]rec=1(&|$)/")
        lines.append("sort @timestamp asc")
        lines.append(f"limit {int(limit)}")
        return "\n| ".join(lines)

    # -- filter_log_events -----------------------------------------------------------------------
    def filter_pattern(self) -> str:
        """A cheap server-side pre-filter for ``filter_log_events``: a quoted term is a substring
        match, so ``"idsite=1"`` also lets ``idsite=12`` through; :meth:`matches` decides."""
        return f'"idsite={self.site_id}"'

    # -- the predicate ---------------------------------------------------------------------------
    def stream_matches(self, log_stream: str | None) -> bool:
        return log_stream is None or not self.stream_pattern or self._stream_re.search(log_stream) is not None

    def matches(self, message: str, log_stream: str | None = None) -> bool:
        """Whether a raw log message (nginx JSON) is a missed tracker request of the site."""
        if not self.stream_matches(log_stream):
            return False
        obj = load_access_line(message)
        if obj is None:
            return False
        status = to_status(obj.get("status"))
        if status is None or status < self.min_status:
            return False
        agent = next((obj[k] for k in _AGENT_KEYS if obj.get(k) is not None), "")
        if str(agent) in self.excluded_user_agents:
            return False
        path = next((obj[k] for k in _PATH_KEYS if obj.get(k)), None)
        if not isinstance(path, str):
            return False
        stem, sep, query = path.partition("?")
        if not sep or stem.rstrip("/").rsplit("/", 1)[-1].lower() not in TRACKER_FILES:
            return False
        params = dict(parse_qsl(query, keep_blank_values=True))
        return params.get("idsite", "").strip() == str(self.site_id) and params.get("rec") == "1"


__all__ = ["DEFAULT_EXCLUDED_AGENTS", "DEFAULT_LOG_GROUP", "DEFAULT_MIN_STATUS", "DEFAULT_STREAM_PATTERN",
           "INSIGHTS_MAX_ROWS", "MissedEventQuery"]
