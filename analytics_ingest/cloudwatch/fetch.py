"""Fetch missed tracker requests from CloudWatch Logs: Logs Insights, or ``filter_log_events``.

What GDS's fetcher got wrong and this one does instead (memex §A.2):

* times are epoch **seconds** for Insights (GDS passed milliseconds); windows are half-open
  ``[start, end)`` in milliseconds, queried with a one-second margin and cut back client-side,
  so neighbouring windows neither lose nor double an event (ids de-duplicate the margin);
* every query is polled until a *terminal* status; ``Failed``/``Cancelled``/``Timeout``/
  ``Unknown`` (and a query that outlives ``query_timeout``) are retried ``max_attempts`` times
  and then **reported** in the result — never an endless loop, never silently dropped;
* a window whose answer may be cut at the row cap (as many rows as the cap, or
  ``statistics.recordsMatched`` above the rows returned) is split in halves until every part
  is under it; a window that cannot be split any more (one second) is reported as truncated;
* throttling: botocore's adaptive retry mode in :func:`make_logs_client`, and a throttling
  error that still surfaces is retried here with exponential back-off;
* every row is re-checked with :meth:`MissedEventQuery.matches` (the same predicate the
  ``filter_log_events`` path relies on), so both paths return the same events.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ..errors import ConfigError
from .events import CloudEvent, parse_insights_timestamp, unique_sorted
from .query import INSIGHTS_MAX_ROWS, MissedEventQuery
from .window import to_ms

NUM_THREADS = 8  # GDS's default: "any higher than this and you risk getting throttled by AWS"
WINDOW_SECONDS = 300
DEFAULT_QUERY_TIMEOUT = 900.0  # seconds of polling one query before giving it up (status Timeout)
THROTTLE_RETRIES = 8

COMPLETE = "Complete"
RETRIED_STATUSES = ("Failed", "Cancelled", "Timeout", "Unknown")
TERMINAL_STATUSES = (COMPLETE, *RETRIED_STATUSES)
ERROR = "Error"  # our status for an attempt that raised (network, throttled past the budget, ...)

THROTTLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "LimitExceededException",
    "RequestLimitExceeded", "ServiceUnavailableException", "RequestThrottled",
})
# Errors that every window would get the same: stop at once with one line.
_CONFIG_CODES = {
    "ResourceNotFoundException": "log group {group!r} not found; check the log group name and the AWS region",
    "AccessDeniedException": "AWS denied CloudWatch Logs access to log group {group!r}; the role needs "
                             "logs:StartQuery, logs:GetQueryResults and logs:FilterLogEvents",
    "UnrecognizedClientException": "AWS did not recognise the credentials; check the AWS profile or role",
    "InvalidSignatureException": "AWS refused the request signature; check the AWS credentials and clock",
    "ExpiredTokenException": "the AWS session token has expired; renew the credentials",
    "MalformedQueryException": "CloudWatch refused the Logs Insights query; check the log stream pattern",
    "InvalidParameterException": "CloudWatch refused a parameter for log group {group!r}; check the window "
                                 "and the log group name",
}


def make_logs_client(region_name: str | None = None, *, session=None, endpoint_url: str | None = None):
    """A CloudWatch Logs client with botocore's adaptive retry mode (client-side rate limiting
    plus retries of throttling errors)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import NoRegionError

    config = Config(retries={"mode": "adaptive", "max_attempts": 10})
    try:
        return (session or boto3).client("logs", region_name=region_name, endpoint_url=endpoint_url, config=config)
    except NoRegionError:
        raise ConfigError("no AWS region is set; set AWS_REGION (GDS Verify used eu-west-2)") from None


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


class _AttemptFailed(Exception):
    """One query attempt raised; ``code`` names why (no AWS message: it may name resources)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class WindowReport:
    """One window as finally fetched (after splitting, only the parts are reported)."""

    start_ms: int
    end_ms: int
    status: str  # Complete, Failed, Cancelled, Timeout, Unknown, or Error
    attempts: int = 0
    rows: int = 0  # rows CloudWatch returned for it (before the predicate)
    records_matched: int | None = None  # Insights statistics.recordsMatched, when given
    truncated: bool = False  # over the row cap and too short to split: events may be missing
    error: str = ""  # error code of the last failed attempt

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class FetchResult:
    method: str  # "insights" or "filter_log_events"
    events: list[CloudEvent] = field(default_factory=list)  # sorted by time, unique by id
    windows: list[WindowReport] = field(default_factory=list)
    attempt_statuses: dict[str, int] = field(default_factory=dict)  # every attempt's final status
    splits: int = 0
    rejected: int = 0  # rows the predicate refused (not missed tracker requests of the site)
    unusable: int = 0  # rows without a message or a readable timestamp
    pages: int = 0  # filter_log_events pages read
    seconds: float = 0.0

    @property
    def window_statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for window in self.windows:
            counts[window.status] = counts.get(window.status, 0) + 1
        return counts

    @property
    def failed(self) -> list[WindowReport]:
        return [w for w in self.windows if w.status != COMPLETE]

    @property
    def truncated(self) -> list[WindowReport]:
        return [w for w in self.windows if w.truncated]

    @property
    def complete(self) -> bool:
        """Every window answered Complete and none was cut at the row cap."""
        return not self.failed and not self.truncated

    def summary(self) -> dict:
        return {
            "method": self.method, "events": len(self.events), "windows": len(self.windows),
            "window_statuses": self.window_statuses, "attempt_statuses": dict(self.attempt_statuses),
            "splits": self.splits, "truncated": len(self.truncated), "failed": len(self.failed),
            "rejected": self.rejected, "unusable": self.unusable, "pages": self.pages,
            "seconds": round(self.seconds, 3), "complete": self.complete,
        }


class _Calls:
    """Calls to the client with throttling back-off and one-line errors for bad configuration."""

    def __init__(self, client, query: MissedEventQuery, sleep, throttle_retries: int) -> None:
        self.client, self.query, self.sleep, self.throttle_retries = client, query, sleep, throttle_retries

    def __call__(self, name: str, **kwargs):
        method = getattr(self.client, name)
        for n in range(self.throttle_retries + 1):
            try:
                return method(**kwargs)
            except Exception as exc:  # noqa: BLE001 - sorted by code below
                code = _error_code(exc)
                if code in THROTTLE_CODES and n < self.throttle_retries:
                    # Full jitter: threads throttled together must not retry together.
                    self.sleep(random.uniform(0, min(20.0, 0.5 * 2**n)))
                    continue
                template = _CONFIG_CODES.get(code)
                if template is not None:
                    text = template.format(group=self.query.log_group)
                    raise ConfigError(f"CloudWatch Logs: {text} ({code})") from None
                raise _AttemptFailed(code) from None
        raise AssertionError("unreachable")  # pragma: no cover


def _windows(start_ms: int, end_ms: int, width_ms: int) -> list[tuple[int, int]]:
    out, a = [], start_ms
    while a < end_ms:
        out.append((a, min(a + width_ms, end_ms)))
        a += width_ms
    return out


def _split_point(a: int, b: int) -> int | None:
    """A whole second strictly inside ``(a, b)`` near the middle (Insights counts in seconds)."""
    mid = (a + b) // 2 // 1000 * 1000
    if mid <= a:
        mid += 1000
    return mid if a < mid < b else None


def _as_ms(value) -> int:
    return int(value) if isinstance(value, int) else to_ms(value)


@dataclass
class _Outcome:
    report: WindowReport
    events: list[CloudEvent]
    rejected: int = 0
    unusable: int = 0
    over_cap: bool = False
    attempt_statuses: list[str] = field(default_factory=list)


class _InsightsWindow:
    """Runs the query of one window to a terminal status, with retries."""

    def __init__(self, calls: _Calls, query: MissedEventQuery, *, row_cap: int, max_attempts: int, sleep,
                 poll_interval: float, max_polls: int) -> None:
        self.calls, self.query = calls, query
        self.row_cap, self.max_attempts, self.sleep = row_cap, max_attempts, sleep
        self.poll_interval, self.max_polls = poll_interval, max_polls
        self.query_string = query.insights_query(limit=row_cap)

    def run(self, a: int, b: int) -> _Outcome:
        report = WindowReport(a, b, status=ERROR)
        statuses: list[str] = []
        for attempt in range(1, self.max_attempts + 1):
            report.attempts = attempt
            try:
                status, response = self._attempt(a, b)
            except _AttemptFailed as exc:
                status, response, report.error = ERROR, None, exc.code
            statuses.append(status)
            report.status = status
            if status == COMPLETE:
                return self._outcome(report, response, a, b, statuses)
            if attempt < self.max_attempts:
                self.sleep(min(30.0, 1.0 * 2 ** (attempt - 1)))
        return _Outcome(report, [], attempt_statuses=statuses)

    def _attempt(self, a: int, b: int) -> tuple[str, dict | None]:
        started = self.calls(
            "start_query",
            logGroupName=self.query.log_group,
            startTime=a // 1000,  # epoch SECONDS (GDS passed milliseconds)
            endTime=-(-b // 1000),  # rounded up: the margin is cut client-side
            queryString=self.query_string,
            limit=self.row_cap,
        )
        query_id = started["queryId"]
        for _poll in range(self.max_polls):
            response = self.calls("get_query_results", queryId=query_id)
            status = response.get("status") or "Unknown"
            if status in TERMINAL_STATUSES:
                return status, response
            self.sleep(self.poll_interval)
        try:  # given up: free the account's concurrent-query slot
            self.calls("stop_query", queryId=query_id)
        except (_AttemptFailed, ConfigError):
            pass
        return "Timeout", None

    def _outcome(self, report: WindowReport, response: dict, a: int, b: int, statuses: list[str]) -> _Outcome:
        rows = response.get("results") or []
        report.rows = len(rows)
        matched = (response.get("statistics") or {}).get("recordsMatched")
        report.records_matched = int(matched) if matched is not None else None
        over = len(rows) >= self.row_cap or (matched is not None and matched > len(rows))
        events, rejected, unusable = [], 0, 0
        matches = self.query.matches
        for row in rows:
            fields = {item.get("field"): item.get("value") for item in row}
            message = fields.get("@message")
            ts = parse_insights_timestamp(str(fields.get("@timestamp") or ""))
            if message is None or ts is None:
                unusable += 1
                continue
            if not a <= ts < b:
                continue  # the one-second margin: a neighbour's event
            stream = fields.get("@logStream")
            if not matches(message, stream):
                rejected += 1
                continue
            events.append(CloudEvent.make(ts, message, stream or "", str(fields.get("@ptr") or "")))
        return _Outcome(report, events, rejected, unusable, over, statuses)


def fetch_window(
    logs_client,
    query: MissedEventQuery,
    start,
    end,
    *,
    threads: int = NUM_THREADS,
    window_seconds: int = WINDOW_SECONDS,
    row_cap: int = INSIGHTS_MAX_ROWS,
    max_attempts: int = 3,
    sleep=time.sleep,
    poll_interval: float = 1.0,
    query_timeout: float = DEFAULT_QUERY_TIMEOUT,
    throttle_retries: int = THROTTLE_RETRIES,
) -> FetchResult:
    """Missed tracker requests in ``[start, end)`` (aware datetimes or epoch ms) via Logs Insights.

    The range is cut into ``window_seconds`` windows run on ``threads`` threads; see the module
    docstring for statuses, retries, splitting and truncation. The caller decides what to do
    with ``result.failed`` / ``result.truncated`` windows (``result.complete`` is False then).
    Raises :class:`ConfigError` (one line) for errors every window would get (missing log
    group, denied access, bad credentials).
    """
    if row_cap < 1 or row_cap > INSIGHTS_MAX_ROWS:
        raise ConfigError(f"row cap must be between 1 and {INSIGHTS_MAX_ROWS}, got {row_cap}")
    if window_seconds < 1 or threads < 1 or max_attempts < 1:
        raise ConfigError("window_seconds, threads and max_attempts must be at least 1")
    clock = time.perf_counter()
    start_ms, end_ms = _as_ms(start), _as_ms(end)
    result = FetchResult(method="insights")
    runner = _InsightsWindow(
        _Calls(logs_client, query, sleep, throttle_retries), query, row_cap=row_cap, max_attempts=max_attempts,
        sleep=sleep, poll_interval=poll_interval, max_polls=max(1, int(-(-query_timeout // max(poll_interval, 1e-3)))),
    )
    events: list[CloudEvent] = []
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cloudwatch")
    try:
        pending = {pool.submit(runner.run, a, b): (a, b) for a, b in _windows(start_ms, end_ms, window_seconds * 1000)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                a, b = pending.pop(future)
                outcome = future.result()  # ConfigError: stop everything (finally cancels the rest)
                for status in outcome.attempt_statuses:
                    result.attempt_statuses[status] = result.attempt_statuses.get(status, 0) + 1
                if outcome.over_cap:
                    mid = _split_point(a, b)
                    if mid is not None:
                        result.splits += 1
                        for part in ((a, mid), (mid, b)):
                            pending[pool.submit(runner.run, *part)] = part
                        continue  # the halves fetch these rows again, uncut
                    outcome.report.truncated = True
                result.windows.append(outcome.report)
                result.rejected += outcome.rejected
                result.unusable += outcome.unusable
                events.extend(outcome.events)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    result.windows.sort(key=lambda w: w.start_ms)
    result.events = unique_sorted(events)
    result.seconds = time.perf_counter() - clock
    return result


def fetch_window_filter_events(
    logs_client,
    query: MissedEventQuery,
    start,
    end,
    *,
    filter_pattern: str | None = None,
    page_limit: int | None = None,
    max_attempts: int = 3,
    sleep=time.sleep,
    throttle_retries: int = THROTTLE_RETRIES,
) -> FetchResult:
    """The same events through ``filter_log_events`` (accounts without Logs Insights).

    Pages are followed by ``nextToken``; ``filter_pattern`` (default
    :meth:`MissedEventQuery.filter_pattern`, ``""`` for none) pre-filters server-side and the
    predicate decides. A page that keeps failing after ``max_attempts`` (or a ``nextToken``
    that repeats) ends the fetch with the window reported ``Error``/``Failed``; what was read
    is kept.
    """
    clock = time.perf_counter()
    start_ms, end_ms = _as_ms(start), _as_ms(end)
    calls = _Calls(logs_client, query, sleep, throttle_retries)
    result = FetchResult(method="filter_log_events")
    report = WindowReport(start_ms, end_ms, status=COMPLETE)
    kwargs = {"logGroupName": query.log_group, "startTime": start_ms, "endTime": end_ms - 1}  # ms, inclusive
    pattern = query.filter_pattern() if filter_pattern is None else filter_pattern
    if pattern:
        kwargs["filterPattern"] = pattern
    if page_limit:
        kwargs["limit"] = int(page_limit)
    events: list[CloudEvent] = []
    seen_tokens: set[str] = set()
    token = None
    while True:
        page = None
        for attempt in range(1, max_attempts + 1):
            report.attempts += 1
            try:
                page = calls("filter_log_events", **kwargs, **({"nextToken": token} if token else {}))
                result.attempt_statuses[COMPLETE] = result.attempt_statuses.get(COMPLETE, 0) + 1
                break
            except _AttemptFailed as exc:
                report.error = exc.code
                result.attempt_statuses[ERROR] = result.attempt_statuses.get(ERROR, 0) + 1
                if attempt < max_attempts:
                    sleep(min(30.0, 1.0 * 2 ** (attempt - 1)))
        if page is None:
            report.status = ERROR
            break
        result.pages += 1
        for event in page.get("events") or []:
            report.rows += 1
            message, ts = event.get("message"), event.get("timestamp")
            if message is None or ts is None:
                result.unusable += 1
                continue
            if not start_ms <= int(ts) < end_ms:
                continue
            stream = event.get("logStreamName")
            if not query.matches(message, stream):
                result.rejected += 1
                continue
            events.append(CloudEvent.make(int(ts), message, stream or "", str(event.get("eventId") or "")))
        token = page.get("nextToken")
        if not token:
            break
        if token in seen_tokens:
            report.status, report.error = "Failed", "nextToken repeated"
            break
        seen_tokens.add(token)
    result.windows = [report]
    result.events = unique_sorted(events)
    result.seconds = time.perf_counter() - clock
    return result


__all__ = ["COMPLETE", "ERROR", "NUM_THREADS", "RETRIED_STATUSES", "TERMINAL_STATUSES", "WINDOW_SECONDS",
           "FetchResult", "WindowReport", "fetch_window", "fetch_window_filter_events", "make_logs_client"]
