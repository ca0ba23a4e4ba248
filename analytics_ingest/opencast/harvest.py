"""Incremental harvesting: which window to fetch, whether it is too long, what was already seen.

The cursor is the ``created`` second of the newest action harvested plus the ids of the actions
of that second. The next window starts *at* that second (inclusive, as the original did), because
actions of the same second may have been committed after the previous query; the ids kept with the
cursor let us drop the ones already delivered instead of re-sending them (the original relied on
Elasticsearch upserts downstream to absorb those duplicates).

Cursor stores: :class:`MemoryCursorStore` (for a Dagster sensor cursor, via
:meth:`CursorState.to_json`), :class:`FileCursorStore` and :class:`S3CursorStore` (the original
kept a bare ``YYYYMMDDHHmmss`` in S3; that legacy body is still read).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..atomic import write_text
from ..errors import ConfigError, InputError
from .client import UTC, OpencastClient
from .settings import DEFAULT_MAX_SPAN

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK = dt.timedelta(minutes=2)  # the original's DEFAULT_INTERVAL for a first run
LEGACY_FORMAT = "%Y%m%d%H%M%S"


class SpanTooLong(InputError):
    """The window is longer than MAX_START_END_SPAN and no override was given."""


def whole_second(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class CursorState:
    """Where the last harvest stopped: a UTC second and the action ids seen in that second."""

    last_created: dt.datetime | None = None
    boundary_ids: frozenset[str] = frozenset()

    def to_json(self) -> str:
        return json.dumps({
            "version": 1,
            "last_created": self.last_created.isoformat() if self.last_created else None,
            "boundary_ids": sorted(self.boundary_ids),
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | None, *, legacy_tz: dt.tzinfo = UTC) -> CursorState:
        """Parse :meth:`to_json` output, an empty value, or the original's bare timestamp."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        text = (text or "").strip()
        if not text:
            return cls()
        if text.isdigit() and len(text) == 14:  # mh-user-action-harvester's S3 body
            moment = dt.datetime.strptime(text, LEGACY_FORMAT).replace(tzinfo=legacy_tz)
            return cls(whole_second(moment))
        try:
            data = json.loads(text)
            created = data.get("last_created")
            return cls(
                whole_second(dt.datetime.fromisoformat(created)) if created else None,
                frozenset(str(i) for i in data.get("boundary_ids") or ()),
            )
        except (ValueError, TypeError, AttributeError):
            raise InputError(
                "the harvest cursor is not valid JSON nor a YYYYMMDDHHmmss timestamp; "
                "fix or delete it and pass --start"
            ) from None


class CursorStore(Protocol):
    def load(self) -> CursorState: ...

    def save(self, state: CursorState) -> None: ...


class MemoryCursorStore:
    """Keeps the state in memory; serialise ``.state`` with ``to_json()`` (Dagster sensor cursor)."""

    def __init__(self, state: CursorState | None = None) -> None:
        self.state = state or CursorState()

    def load(self) -> CursorState:
        return self.state

    def save(self, state: CursorState) -> None:
        self.state = state

    def __str__(self) -> str:
        return "memory"


class FileCursorStore:
    """A JSON file, replaced atomically so a crash leaves the old or the new cursor, never half."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def load(self) -> CursorState:
        try:
            return CursorState.from_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return CursorState()
        except OSError as exc:
            raise ConfigError(f"cannot read the harvest cursor {self.path}: {exc.strerror}; check permissions") from None

    def save(self, state: CursorState) -> None:
        try:
            write_text(self.path, state.to_json() + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write the harvest cursor {self.path}: {exc.strerror}; check permissions") from None

    def __str__(self) -> str:
        return str(self.path)


class S3CursorStore:
    """An S3 object, like the original's ``s3://$S3_HARVEST_TS_BUCKET/$S3_LAST_ACTION_TS_KEY``.

    Unlike the original the bucket is not created on the fly: a typo in the name would otherwise
    start a fresh cursor in a new bucket and silently re-harvest from "now − interval".
    """

    def __init__(self, bucket: str, key: str, client=None, *, legacy_tz: dt.tzinfo = UTC) -> None:
        if not bucket or not key:
            raise ConfigError("an S3 cursor needs s3://bucket/key")
        self.bucket, self.key, self.legacy_tz = bucket, key, legacy_tz
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def load(self) -> CursorState:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return CursorState()
            raise self._error("read", code) from None
        return CursorState.from_json(body, legacy_tz=self.legacy_tz)

    def save(self, state: CursorState) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key, Body=state.to_json().encode(),
                                   ContentType="application/json")
        except ClientError as exc:
            raise self._error("write", exc.response.get("Error", {}).get("Code", "")) from None

    def _error(self, verb: str, code: str) -> ConfigError:
        if code == "NoSuchBucket":
            return ConfigError(f"S3 bucket {self.bucket!r} for the harvest cursor does not exist; create it or fix the cursor URL")
        return ConfigError(f"cannot {verb} the harvest cursor {self}: {code or 'S3 error'}; check the bucket policy and credentials")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def open_cursor_store(spec: str | os.PathLike, *, s3_client=None, legacy_tz: dt.tzinfo = UTC) -> CursorStore:
    """``s3://bucket/key`` → :class:`S3CursorStore`, ``memory:`` → memory, else a file path."""
    text = str(spec)
    if text.startswith("s3://"):
        bucket, _, key = text[5:].partition("/")
        return S3CursorStore(bucket, key, s3_client, legacy_tz=legacy_tz)
    if text == "memory:":
        return MemoryCursorStore()
    return FileCursorStore(text)


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    from_cursor: bool  # start came from the stored cursor (or the first-run lookback)

    @property
    def span_seconds(self) -> float:
        # total_seconds(), not .seconds: the original's .seconds ignored whole days.
        return (self.end - self.start).total_seconds()


@dataclass
class HarvestStats:
    window: Window
    fetched: int = 0
    duplicates: int = 0
    passed: int = 0
    cursor: CursorState = field(default_factory=CursorState)
    cursor_saved: bool = False


class Harvester:
    """Fetches one window of user actions, drops the already-seen ones and moves the cursor.

    ``max_span`` is in seconds (None or 0 disables the guard). The cursor is saved only after
    ``on_batch`` took every batch, so a failure anywhere means the next run repeats the window.
    """

    def __init__(
        self,
        client: OpencastClient,
        cursor_store: CursorStore,
        *,
        max_span: float | None = DEFAULT_MAX_SPAN,
        allow_long_span: bool = False,
        dedupe: bool = True,
        batch_size: int = 1000,
        default_lookback: dt.timedelta = DEFAULT_LOOKBACK,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if max_span is not None and not isinstance(max_span, (int, float)):
            # The original compared an int with the env *string*; refuse anything but a number.
            raise ConfigError(f"max_span must be a number of seconds, got {type(max_span).__name__}")
        self.client = client
        self.cursor_store = cursor_store
        self.max_span = float(max_span) if max_span else None
        self.allow_long_span = allow_long_span
        self.dedupe = dedupe
        self.batch_size = batch_size
        self.default_lookback = default_lookback
        self._now = now or (lambda: dt.datetime.now(UTC))

    def plan(self, start: dt.datetime | None = None, end: dt.datetime | None = None,
             state: CursorState | None = None) -> Window:
        """The window: explicit start, else the cursor's second, else now − lookback; end = now."""
        state = self.cursor_store.load() if state is None else state
        end_at = whole_second(self.client.aware(end) if end else self._now())
        if start is not None:
            start_at, from_cursor = whole_second(self.client.aware(start)), False
        elif state.last_created is not None:
            start_at, from_cursor = state.last_created, True
        else:
            start_at, from_cursor = end_at - self.default_lookback, True
        if start_at > end_at and from_cursor and start is None:
            # A cursor ahead of our clock (skew between hosts): harvest nothing rather than fail
            # every run; the window opens again once the clock passes the cursor.
            log.warning("harvest cursor %s is after now %s; nothing to fetch yet", start_at, end_at)
            start_at = end_at
        if start_at > end_at:
            raise InputError(f"harvest start {start_at.isoformat()} is after end {end_at.isoformat()}; fix --start/--end")
        return Window(start_at, end_at, from_cursor and start is None)

    def check_span(self, window: Window) -> None:
        if self.max_span is None or self.allow_long_span:
            return
        if window.span_seconds > self.max_span:
            raise SpanTooLong(
                f"harvest window {window.start.isoformat()} → {window.end.isoformat()} spans "
                f"{window.span_seconds:.0f} s, more than MAX_START_END_SPAN={self.max_span:.0f} s; rerun once "
                "with --allow-long-span (no other harvester running) or harvest it in pieces with --start/--end"
            )

    def run(self, on_batch: Callable[[list[dict]], None], *, start: dt.datetime | None = None,
            end: dt.datetime | None = None, update_cursor: bool | None = None) -> HarvestStats:
        """Harvest one window, handing new actions to ``on_batch`` page by page.

        ``update_cursor`` None means: save the cursor only when the window came from it (an explicit
        ``--start`` is a backfill and must not move the live cursor).
        """
        old = self.cursor_store.load()
        window = self.plan(start, end, old)
        self.check_span(window)
        stats = HarvestStats(window)
        # Ids of this run too: upstream's list query has no ORDER BY, so offset paging can repeat a
        # row. One short string per action; a months-long backfill should be cut with --start/--end.
        seen: set[str] = set()
        newest: dt.datetime | None = None
        newest_ids: set[str] = set()
        for page in self.client.user_actions(window.start, window.end, batch_size=self.batch_size):
            fresh = []
            for action in page:
                stats.fetched += 1
                action_id = str(action.get("id"))
                second = whole_second(self.client.created(action))
                if newest is None or second > newest:
                    newest, newest_ids = second, set()
                if second == newest:
                    newest_ids.add(action_id)
                if self.dedupe and (action_id in seen or (
                        second == old.last_created and action_id in old.boundary_ids)):
                    stats.duplicates += 1
                    continue
                seen.add(action_id)
                fresh.append(action)
            if fresh:
                on_batch(fresh)
                stats.passed += len(fresh)
        stats.cursor = self._next_state(old, window, newest, newest_ids)
        save = window.from_cursor if update_cursor is None else update_cursor
        if save and stats.cursor != old:
            self.cursor_store.save(stats.cursor)
            stats.cursor_saved = True
        log.info("harvested %s → %s: %d fetched, %d duplicates", window.start, window.end,
                 stats.fetched, stats.duplicates)
        return stats

    @staticmethod
    def _next_state(old: CursorState, window: Window, newest: dt.datetime | None,
                    newest_ids: set[str]) -> CursorState:
        # Nothing fetched: move to the window's end like the original, or a quiet night would
        # grow the span until the guard fires.
        new = CursorState(newest, frozenset(newest_ids)) if newest else CursorState(window.end)
        if old.last_created is None:
            return new
        if new.last_created < old.last_created:
            return old  # never backwards (a backfill with update_cursor=True)
        if new.last_created == old.last_created:
            return CursorState(old.last_created, old.boundary_ids | new.boundary_ids)
        return new
