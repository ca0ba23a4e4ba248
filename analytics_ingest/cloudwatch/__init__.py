"""Replay missed Matomo tracker requests from CloudWatch Logs (GDS Verify's missed-event replayer).

fetch (Logs Insights or ``filter_log_events``) → store (a site-day's events as JSON lines) →
replay (an append-only journal imported exactly once with the ``matomo_replay`` format).
No Dagster here: :mod:`analytics_ingest.defs` wires these functions.
"""

from .events import CloudEvent, event_id
from .fetch import NUM_THREADS, FetchResult, WindowReport, fetch_window, fetch_window_filter_events, make_logs_client
from .query import MissedEventQuery
from .replay import ReplayResult, append_new_events, events_by_day, journal_path, replay_day
from .store import ENV_S3, EventStore
from .window import ENV_MAX_SPAN_HOURS, days_touched, parse_window

__all__ = [
    "ENV_MAX_SPAN_HOURS",
    "ENV_S3",
    "NUM_THREADS",
    "CloudEvent",
    "EventStore",
    "FetchResult",
    "MissedEventQuery",
    "ReplayResult",
    "WindowReport",
    "append_new_events",
    "days_touched",
    "event_id",
    "events_by_day",
    "fetch_window",
    "fetch_window_filter_events",
    "journal_path",
    "make_logs_client",
    "parse_window",
    "replay_day",
]
