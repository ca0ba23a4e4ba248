"""The missed-event replay as days and windows: fetch → store → replay → archive.

Shared by the Dagster assets (one site-day at a time), the ad hoc Dagster job and
``analytics-ingest replay START END`` (any window), so all three do the same thing. Settings come
from environment variables, with GDS Verify's values as defaults:

==========================================  =====================================================
``CLOUDWATCH_SITES``                        site keys (or ids) to replay, comma-separated, or ``all``;
                                            unset: no CloudWatch assets (the embedded default is offline)
``CLOUDWATCH_LOG_GROUP``                    ``matomo``
``CLOUDWATCH_STREAM_PATTERN``               ``matomo-nginx`` (regex on the log stream name)
``CLOUDWATCH_MIN_STATUS``                   ``500`` (compared as a number)
``CLOUDWATCH_EXCLUDED_AGENTS``              ``ELB-HealthChecker/2.0,Smokey Test``
``CLOUDWATCH_API``                          ``insights`` (Logs Insights), ``filter`` (``filter_log_events``), or
                                            ``recorded:<file.json>``: a recorded log group answering
                                            ``filter_log_events`` (:mod:`.recorded`; no AWS)
``NUM_THREADS``                             ``8`` parallel Insights queries
``PERIOD_WIDTH_IN_SECONDS``                 ``300`` seconds per Insights window (split further at the row cap)
``CLOUDWATCH_ENDPOINT_URL``                 unset (AWS); for a local emulator
``ANALYTICS_INGEST_CLOUDWATCH_S3``          unset (under the home); ``s3://bucket/prefix`` keeps the events in S3
``ANALYTICS_INGEST_REPLAY_MAX_SPAN_HOURS``  ``168`` hours: the longest ad hoc replay window
==========================================  =====================================================

:meth:`CloudwatchConfig.from_env` is the only reader of these variables: the
shells (the CLI, the Dagster resources) call it, the functions below take the typed
:class:`CloudwatchConfig`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..archiving import archive_day
from ..errors import ConfigError, IngestError
from ..site_time import LocalDay
from .fetch import NUM_THREADS, FetchResult, fetch_window, fetch_window_filter_events, make_logs_client
from .query import (
    DEFAULT_EXCLUDED_AGENTS,
    DEFAULT_LOG_GROUP,
    DEFAULT_MIN_STATUS,
    DEFAULT_STREAM_PATTERN,
    MissedEventQuery,
)
from .recorded import RecordedLogsClient, recording_path
from .replay import events_by_day, replay_day
from .store import ENV_S3, EventStore
from .window import DEFAULT_MAX_SPAN, ENV_MAX_SPAN_HOURS, parse_max_span

APIS = ("insights", "filter")


@dataclass(frozen=True)
class CloudwatchConfig:
    sites: tuple[str, ...] = ()  # site keys/ids, or ("all",)
    log_group: str = DEFAULT_LOG_GROUP
    stream_pattern: str = DEFAULT_STREAM_PATTERN
    min_status: int = DEFAULT_MIN_STATUS
    excluded_agents: tuple[str, ...] = DEFAULT_EXCLUDED_AGENTS
    api: str = "insights"
    threads: int = NUM_THREADS
    window_seconds: int = 300
    endpoint_url: str | None = None
    recording: str | None = None  # api "recorded": the recorded log group's JSON file
    events_s3: str | None = None  # s3://bucket/prefix keeping the fetched events; None: under the home
    max_span: dt.timedelta = DEFAULT_MAX_SPAN  # the longest ad hoc replay window

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "CloudwatchConfig":
        sites = tuple(s.strip() for s in env.get("CLOUDWATCH_SITES", "").split(",") if s.strip())
        api = env.get("CLOUDWATCH_API", "insights").strip()
        recording = recording_path(api)
        api = "recorded" if recording is not None else api.lower()
        if api not in APIS and recording is None:
            raise ConfigError(f"CLOUDWATCH_API={api!r} is not known; use insights, filter or recorded:<file.json>")
        agents = env.get("CLOUDWATCH_EXCLUDED_AGENTS")
        return cls(
            sites=sites,
            log_group=env.get("CLOUDWATCH_LOG_GROUP") or DEFAULT_LOG_GROUP,
            stream_pattern=env.get("CLOUDWATCH_STREAM_PATTERN") or DEFAULT_STREAM_PATTERN,
            min_status=_whole(env, "CLOUDWATCH_MIN_STATUS", DEFAULT_MIN_STATUS, 100),
            excluded_agents=DEFAULT_EXCLUDED_AGENTS if agents is None else tuple(a.strip() for a in agents.split(",") if a.strip()),
            api=api,
            threads=_whole(env, "NUM_THREADS", NUM_THREADS, 1),
            window_seconds=_whole(env, "PERIOD_WIDTH_IN_SECONDS", 300, 1),
            endpoint_url=env.get("CLOUDWATCH_ENDPOINT_URL") or None,
            recording=str(recording) if recording is not None else None,
            events_s3=env.get(ENV_S3) or None,
            max_span=parse_max_span(env.get(ENV_MAX_SPAN_HOURS)),
        )

    def covers(self, site) -> bool:
        return "all" in self.sites or site.key in self.sites or str(site.id) in self.sites

    def query(self, site) -> MissedEventQuery:
        return MissedEventQuery(site_id=site.id, log_group=self.log_group, stream_pattern=self.stream_pattern,
                                min_status=self.min_status, excluded_user_agents=self.excluded_agents)


def _whole(env, name: str, default: int, minimum: int) -> int:
    text = env.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def fetch(config: CloudwatchConfig, site, start: dt.datetime, end: dt.datetime, *, client=None) -> FetchResult:
    query = config.query(site)
    if config.api == "recorded":  # the same fetcher, over a recorded log group instead of AWS
        return fetch_window_filter_events(client or RecordedLogsClient(config.recording), query, start, end)
    client = client or make_logs_client(endpoint_url=config.endpoint_url)
    if config.api == "filter":
        return fetch_window_filter_events(client, query, start, end)
    return fetch_window(client, query, start, end, threads=config.threads, window_seconds=config.window_seconds)


@dataclass
class DayFetch:
    day: str
    result: FetchResult
    location: str
    added: int
    total: int


def fetch_day(settings, config: CloudwatchConfig, site, day: dt.date, *, client=None, s3_client=None) -> DayFetch:
    """Fetch the site-local day's missed requests and merge them into the day's stored events."""
    start, end = LocalDay(site.timezone).bounds_utc(day)
    result = fetch(config, site, start, end, client=client)
    saved = EventStore.from_settings(settings, s3_url=config.events_s3, s3_client=s3_client).save(
        site.key, day, result.events)
    return DayFetch(day=day.isoformat(), result=result, location=saved.location, added=saved.added, total=saved.total)


def replay_stored_day(settings, ledger, config: CloudwatchConfig, site, day: dt.date, *, s3_client=None, policy=None):
    """Replay every stored event of the day (each reaches Matomo once, however often this runs)."""
    events = EventStore.from_settings(settings, s3_url=config.events_s3, s3_client=s3_client).load(site.key, day)
    return replay_day(settings, ledger, site, day, events, policy=policy)


@dataclass
class WindowReplay:
    start: str
    end: str
    fetched: int = 0
    failed_windows: int = 0
    truncated_windows: int = 0
    days: dict = field(default_factory=dict)  # day -> {"stored", "appended", "delivered", "invalid", "archive"}

    def lines(self) -> list[str]:
        out = [f"window {self.start} → {self.end}: {self.fetched} missed requests fetched"
               + (f", {self.failed_windows} query window(s) FAILED" if self.failed_windows else "")
               + (f", {self.truncated_windows} window(s) TRUNCATED" if self.truncated_windows else "")]
        for day, info in sorted(self.days.items()):
            out.append(f"  {day}: appended {info['appended']}, delivered {info['delivered']}, "
                       f"invalid {info['invalid']}; archive: {info['archive']}")
        return out


def replay_window(settings, ledger, config: CloudwatchConfig, site, start: dt.datetime, end: dt.datetime, *,
                  client=None, s3_client=None, runner=None, api=None) -> WindowReplay:
    """GDS's ``replay_missed_events.sh START END``: fetch exactly [start, end), replay each day's
    events through the exactly-once journal, then archive the days that received new hits."""
    result = fetch(config, site, start, end, client=client)
    report = WindowReplay(start=start.isoformat(), end=end.isoformat(), fetched=len(result.events),
                          failed_windows=len(result.failed), truncated_windows=len(result.truncated))
    store = EventStore.from_settings(settings, s3_url=config.events_s3, s3_client=s3_client)
    for day, events in sorted(events_by_day(result.events, site.timezone).items()):
        store.save(site.key, day, events)
        replayed = replay_day(settings, ledger, site, day, events)
        info = {"appended": replayed.appended, "delivered": replayed.delivered, "invalid": replayed.invalid}
        if replayed.delivered:
            try:
                archived = archive_day(settings, ledger, site, day, runner=runner, api=api)
                info["archive"] = archived.reason if not archived.archived else f"archived ({archived.runner})"
            except IngestError as exc:
                info["archive"] = f"FAILED: {exc}"
        else:
            info["archive"] = "skipped: no new hits"
        report.days[day.isoformat()] = info
    return report
