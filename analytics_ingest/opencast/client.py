"""The Opencast (Matterhorn) REST API as the DCE harvester uses it.

Facts this module relies on (see the research notes, section B):

- ``GET /usertracking/actions.json`` pages with ``limit``/``offset`` (a *row* offset, although
  upstream documents it as a page number). ``limit=0`` means 10 upstream, so a limit is always sent.
- ``start``/``end`` (``YYYYMMDDHHmmss``) exist only in DCE's Matterhorn fork. Upstream Opencast
  accepts ``day=YYYYMMDD`` but silently ignores unknown parameters, so a server without
  ``start``/``end`` answers a windowed query with *every* action. :meth:`OpencastClient.window_mode`
  detects that with one probe (see there) and falls back to ``day`` queries.
- JAXB JSON: ``{"actions": {"total": "N", "offset": ..., "action": [...]}}`` where a single
  action is an object instead of a list, the ``action`` key is absent when there are none, and
  numbers may come as strings. :func:`as_list` and :func:`as_int` absorb that.
- Auth is HTTP Digest plus the Matterhorn headers (``X-Requested-Auth: Digest`` and
  ``X-Opencast-Matterhorn-Authorization: true``); without them Matterhorn answers with a
  redirect to its login form instead of a digest challenge.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
from requests.auth import HTTPDigestAuth

from ..errors import ConfigError, IngestError

log = logging.getLogger(__name__)

UTC = dt.timezone.utc
ACTIONS_PATH = "/usertracking/actions.json"
EPISODE_PATH = "/search/episode.json"
WORKFLOWS_PATH = "/workflow/instances.json"
# The workflow whose operations carry the live capture and the retraction times (DCE-specific).
LIVE_WORKFLOW_DEFINITION = "DCE-archive-publish-external"
SERVER_TIME_FORMAT = "%Y%m%d%H%M%S"  # what the DCE fork expects for start/end

# A window that cannot contain user actions (Matterhorn did not exist in 1971). A server that
# honours start/end answers it with total 0; one that ignores them answers with its whole table.
_PROBE_START = dt.datetime(1971, 1, 1, 0, 0, 0)
_PROBE_END = dt.datetime(1971, 1, 1, 0, 0, 1)


class OpencastError(IngestError):
    """Opencast did not answer usefully within the retry budget (one line, no secrets)."""


class OpencastRequestError(OpencastError):
    """Opencast refused the request itself (a 4xx other than 401): retrying cannot help."""


def as_list(value: Any) -> list:
    """JAXB's JSON: absent → [], a single object → [object], a list → itself."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_int(value: Any, default: int | None = None) -> int | None:
    """Totals and durations arrive as strings; anything unparsable gives ``default``."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


def parse_created(value: str, default_tz: dt.tzinfo = UTC) -> dt.datetime:
    """An action's ``created`` as an aware datetime (naive values are in the server's zone)."""
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz)
    return moment


@dataclass(frozen=True)
class LiveInfo:
    """What the admin node's workflow says about an episode's live stream and availability."""

    live_stream: bool
    live_start: dt.datetime | None = None
    live_end: dt.datetime | None = None
    live_duration_ms: int | None = None
    available: dt.datetime | None = None


class OpencastClient:
    """A small client for the endpoints the harvester needs.

    ``session`` is injectable for tests and connection reuse. ``server_tz`` is the zone in which
    the server reads ``start``/``end`` and ``day`` (the original sent the harvester's local time,
    which was the server's). ``window_mode`` is ``"auto"`` (probe once), ``"start_end"`` or ``"day"``.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout: float = 30.0,
        session: requests.Session | None = None,
        server_tz: dt.tzinfo = UTC,
        window_mode: str = "auto",
        admin_url: str | None = None,
        max_attempts: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from .recorded import RecordedEngage, recorded_folder

        recorded = recorded_folder(base_url)  # file:<folder>: recorded answers, no network
        if recorded is None and (not base_url or not base_url.startswith(("http://", "https://"))):
            raise ConfigError(
                "OPENCAST_URL must be the engage node's http(s) URL, e.g. https://engage.example.edu "
                "(or file:<folder> of recorded answers)"
            )
        if recorded is not None and session is None:
            session = RecordedEngage(recorded, server_tz)
        if recorded is None and (not user or password is None or password == ""):
            raise ConfigError("OPENCAST_USER and OPENCAST_PASSWORD must both be set (the digest REST user)")
        if window_mode not in ("auto", "start_end", "day"):
            raise ConfigError(f"window mode must be auto, start_end or day, got {window_mode!r}")
        self.base_url = base_url.rstrip("/")
        self.admin_url = admin_url.rstrip("/") if admin_url else None
        self.user = user
        self.timeout = timeout
        self.server_tz = server_tz
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._window_mode = None if window_mode == "auto" else window_mode
        self.session = session or requests.Session()
        # The password lives only inside the auth object; __repr__ below never shows it.
        self.session.auth = HTTPDigestAuth(user, password) if recorded is None else None
        self.session.headers.update({
            "X-Requested-Auth": "Digest",
            "X-Opencast-Matterhorn-Authorization": "true",
            "Accept": "application/json",
        })
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"OpencastClient({self.base_url!r}, user={self.user!r})"

    # -- transport ------------------------------------------------------------------------

    def get_json(self, path: str, params: dict[str, Any], *, base_url: str | None = None) -> dict:
        """GET with bounded retries on 5xx, timeouts and connection errors.

        4xx other than 401 are not retried: the request itself is wrong and would stay wrong.
        """
        url = (base_url or self.base_url) + path
        last_problem = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.requests_made += 1
                response = self.session.get(url, params=params, timeout=self.timeout)
            except requests.Timeout:
                last_problem = f"no answer within {self.timeout:g} s"
            except requests.ConnectionError:
                last_problem = "connection failed"
            else:
                if response.status_code == 401:
                    raise ConfigError(
                        f"Opencast at {self.base_url} rejected user {self.user!r} (HTTP 401); "
                        "check OPENCAST_USER and OPENCAST_PASSWORD"
                    )
                if response.status_code >= 500:
                    last_problem = f"HTTP {response.status_code}"
                elif response.status_code >= 400:
                    raise OpencastRequestError(
                        f"Opencast GET {path} answered HTTP {response.status_code}; check the parameters "
                        "and the server version"
                    )
                else:
                    try:
                        body = response.json()
                    except ValueError:
                        raise OpencastError(
                            f"Opencast GET {path} did not return JSON (content-type "
                            f"{response.headers.get('content-type', '?')}); check OPENCAST_URL points "
                            "at the engage node"
                        ) from None
                    return body if isinstance(body, dict) else {}
            if attempt < self.max_attempts:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                log.warning("Opencast GET %s: %s; retry %d/%d in %.1f s", path, last_problem,
                            attempt, self.max_attempts - 1, delay)
                self._sleep(delay)
        raise OpencastError(
            f"Opencast GET {path} failed {self.max_attempts} times ({last_problem}); check the engage "
            "node and rerun (the cursor was not advanced)"
        )

    # -- user actions ---------------------------------------------------------------------

    def _server_time(self, moment: dt.datetime) -> str:
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.server_tz)
        return moment.strftime(SERVER_TIME_FORMAT)

    def _actions_page(self, params: dict[str, Any]) -> tuple[list[dict], int | None]:
        body = self.get_json(ACTIONS_PATH, params)
        container = body.get("actions") or {}
        if not isinstance(container, dict):
            return [], 0
        return as_list(container.get("action")), as_int(container.get("total"))

    def window_mode(self) -> str:
        """``"start_end"`` if the server honours ``start``/``end``, else ``"day"``.

        How it is detected: one request for a one-second window in 1971 with ``limit=1``. A server
        that honours the window reports no actions; one that ignores unknown parameters (upstream
        Opencast) returns rows or a non-zero total; one that rejects them answers 400. An empty
        server cannot be told apart, but then nothing is lost: windowed results are also filtered
        by ``created`` on our side (see :meth:`user_actions`).
        """
        if self._window_mode is None:
            params = {"start": self._server_time(_PROBE_START), "end": self._server_time(_PROBE_END),
                      "limit": 1, "offset": 0}
            try:
                rows, total = self._actions_page(params)
            except OpencastRequestError:
                # A 4xx to the probe: the server refuses the parameters, which means "no support".
                rows, total = [], 1
            self._window_mode = "day" if (rows or (total or 0) > 0) else "start_end"
            log.info("Opencast %s: window mode %s", self.base_url, self._window_mode)
        return self._window_mode

    def _paged(self, params: dict[str, Any], batch_size: int) -> Iterator[list[dict]]:
        offset = 0
        while True:
            rows, total = self._actions_page({**params, "limit": batch_size, "offset": offset})
            if not rows:
                return
            yield rows
            offset += len(rows)
            # Stop on the reported total when there is one; otherwise the empty page ends it. A short
            # page is not used as the end: a server may cap limit below what we asked for.
            if total is not None and offset >= total:
                return

    def user_actions(self, start: dt.datetime, end: dt.datetime, *, batch_size: int = 1000
                     ) -> Iterator[list[dict]]:
        """Pages (lists) of raw actions created in ``[start, end]`` at whole-second precision.

        Rows outside the window are dropped here: a day query returns the whole day, and a server
        mistaken for one that honours ``start``/``end`` would return everything.
        """
        if batch_size < 1:
            raise ConfigError(f"batch size must be 1 or more, got {batch_size}")
        start, end = self.aware(start), self.aware(end)
        lo, hi = _second(start), _second(end)
        if self.window_mode() == "start_end":
            queries = [{"start": self._server_time(start), "end": self._server_time(end)}]
        else:
            queries = [{"day": day.strftime("%Y%m%d")} for day in self._days(start, end)]
        for query in queries:
            for rows in self._paged(query, batch_size):
                kept = [a for a in rows if lo <= _second(self.created(a)) <= hi]
                if kept:
                    yield kept

    def aware(self, moment: dt.datetime) -> dt.datetime:
        """Naive datetimes are read in the server's zone, as the original's --start/--end were."""
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self.server_tz)

    def _days(self, start: dt.datetime, end: dt.datetime) -> list[dt.date]:
        first = start.astimezone(self.server_tz).date()
        last = end.astimezone(self.server_tz).date()
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    def created(self, action: dict) -> dt.datetime:
        """``created`` of a raw action as an aware datetime."""
        return parse_created(action["created"], self.server_tz)

    # -- episodes -------------------------------------------------------------------------

    def episode(self, mpid: str) -> dict | None:
        """The search result for one media package (deleted ones included), or None."""
        body = self.get_json(EPISODE_PATH, {"id": mpid, "includeDeleted": "true"})
        results = as_list((body.get("search-results") or {}).get("result"))
        for result in results:
            if result.get("id") == mpid or (result.get("mediapackage") or {}).get("id") == mpid:
                return result
        return results[0] if results else None

    def episodes_created(self, day: dt.date, *, page_size: int = 100) -> Iterator[dict]:
        """Every episode created on ``day`` (UTC), paging the search endpoint by creation date."""
        created_from = dt.datetime.combine(day, dt.time(0, 0, 0))
        created_to = dt.datetime.combine(day, dt.time(23, 59, 59))
        params = {"createdFrom": created_from.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "createdTo": created_to.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "sort": "DATE_CREATED", "includeDeleted": "true", "limit": page_size}
        offset = 0
        while True:
            body = self.get_json(EPISODE_PATH, {**params, "offset": offset})
            container = body.get("search-results") or {}
            results = as_list(container.get("result"))
            if not results:
                return
            yield from results
            offset += len(results)
            total = as_int(container.get("total"))
            if total is not None and offset >= total:
                return

    def live_info(self, mpid: str) -> LiveInfo | None:
        """Live capture start/stop and availability from the admin node, or None if unknown.

        Needs ``admin_url``. Uses the newest SUCCEEDED ``DCE-archive-publish-external`` workflow
        (the successor took the highest id because the API's sort did not work); its ``capture``
        operation gives the live times and ``retract-element`` the availability (epoch ms).
        """
        if not self.admin_url:
            raise ConfigError("live info needs the admin node: set OPENCAST_ADMIN_URL")
        body = self.get_json(WORKFLOWS_PATH, {"mp": mpid, "state": "SUCCEEDED",
                                              "workflowdefinition": LIVE_WORKFLOW_DEFINITION},
                             base_url=self.admin_url)
        workflows = as_list((body.get("workflows") or {}).get("workflow"))
        if not workflows:
            return None
        newest = max(workflows, key=lambda w: as_int(w.get("id"), -1))
        operations = as_list((newest.get("operations") or {}).get("operation"))
        by_id = {op.get("id"): op for op in operations if isinstance(op, dict)}
        capture = by_id.get("capture")
        retract = by_id.get("retract-element")
        info = LiveInfo(live_stream=capture is not None, available=_epoch_ms((retract or {}).get("completed")))
        if capture is not None:
            started, completed = as_int(capture.get("started")), as_int(capture.get("completed"))
            info = LiveInfo(
                live_stream=True,
                live_start=_epoch_ms(started),
                live_end=_epoch_ms(completed),
                live_duration_ms=(completed - started) if started is not None and completed is not None else None,
                available=info.available,
            )
        return info


def _second(moment: dt.datetime) -> dt.datetime:
    """Whole-second, UTC: the server's window has second precision and inclusive edges."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _epoch_ms(value: Any) -> dt.datetime | None:
    ms = as_int(value)
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=UTC)
