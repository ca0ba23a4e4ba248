"""Episode metadata (cached) and the message shape of the original harvester.

The engage node is asked once per media package per ``EPISODE_CACHE_EXPIRE`` seconds: many
actions of one harvest belong to a few lectures. The cache is Redis when ``REDIS_URL`` is set
(shared between harvester processes, as the original's was), else an in-process dict that can be
persisted to a JSON file between runs. "Not found" is cached too: the original re-asked (and
crashed) for every action of a deleted or unknown package.

Messages keep the original's fields so its consumers keep working; differences (documented):
``huid`` is null rather than the string "None" when there is no user id, ``proxies`` lists the
X-Forwarded-For chain (``proxy1..N`` are kept too), and series-derived fields are only set when
the episode has a series (the original sliced the string "None").
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from ..atomic import write_text
from ..errors import ConfigError
from .client import UTC, LiveInfo, OpencastClient, as_int, as_list, parse_created
from .settings import DEFAULT_CACHE_EXPIRE  # noqa: F401 - re-exported: the setting's default lives with the settings

log = logging.getLogger(__name__)

_MISSING = "null"  # what a cached "no such episode" looks like


class EpisodeCache(Protocol):
    def get(self, mpid: str) -> str | None: ...

    def set(self, mpid: str, value: str) -> None: ...


class LocalEpisodeCache:
    """In-process TTL cache; with ``path`` it is loaded at start and written by :meth:`flush`."""

    def __init__(self, ttl: float, path: str | os.PathLike | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.path = Path(path) if path else None
        self._clock = clock
        self._entries: dict[str, tuple[float, str]] = {}
        if self.path and self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                self._entries = {k: (float(v[0]), str(v[1])) for k, v in raw.items()}
            except (OSError, ValueError, TypeError, IndexError):
                log.warning("episode cache %s unreadable; starting empty", self.path)

    def get(self, mpid: str) -> str | None:
        entry = self._entries.get(mpid)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[mpid]
            return None
        return entry[1]

    def set(self, mpid: str, value: str) -> None:
        if self.ttl > 0:
            self._entries[mpid] = (self._clock() + self.ttl, value)

    def flush(self) -> None:
        """Write live entries to ``path`` (atomically); a no-op without a path."""
        if not self.path:
            return
        now = self._clock()
        live = {k: list(v) for k, v in self._entries.items() if v[0] > now}
        write_text(self.path, json.dumps(live), perm=0o600)  # viewers' episodes: keep it private


class RedisEpisodeCache:
    """A Redis key with a TTL per media package, like the original's SETEX (keys are prefixed here)."""

    def __init__(self, redis_client, ttl: float, prefix: str = "analytics_ingest:opencast:episode:") -> None:
        self.redis, self.ttl, self.prefix = redis_client, ttl, prefix

    @classmethod
    def from_url(cls, url: str, ttl: float, **kwargs) -> RedisEpisodeCache:
        import redis

        try:
            client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        except ValueError:
            raise ConfigError("REDIS_URL must look like redis://host:6379/0") from None
        return cls(client, ttl, **kwargs)

    def get(self, mpid: str) -> str | None:
        value = self._call(lambda: self.redis.get(self.prefix + mpid))
        return value.decode("utf-8") if isinstance(value, bytes) else value

    def set(self, mpid: str, value: str) -> None:
        # SET with EX (SETEX is deprecated in redis-py 8); EX refuses 0, and
        # EPISODE_CACHE_EXPIRE=0 means "do not cache" anyway.
        if self.ttl > 0:
            self._call(lambda: self.redis.set(self.prefix + mpid, value, ex=max(1, int(self.ttl))))

    def flush(self) -> None:
        """Redis persists by itself."""

    @staticmethod
    def _call(operation):
        import redis

        try:
            return operation()
        except redis.RedisError as exc:
            # The message names the exception type only: a URL with a password must not leak.
            raise ConfigError(f"Redis episode cache failed ({type(exc).__name__}); check REDIS_URL and that Redis is up") from None


def make_episode_cache(ttl: float, *, redis_url: str | None = None,
                       path: str | os.PathLike | None = None) -> LocalEpisodeCache | RedisEpisodeCache:
    if redis_url:
        return RedisEpisodeCache.from_url(redis_url, ttl)
    return LocalEpisodeCache(ttl, path)


class EpisodeLookup:
    """Episode search results by media package id, through the cache."""

    def __init__(self, client: OpencastClient, cache: EpisodeCache) -> None:
        self.client, self.cache = client, cache
        self.hits = 0
        self.fetches = 0

    def get(self, mpid: str | None) -> dict | None:
        if not mpid:
            return None
        cached = self.cache.get(mpid)
        if cached is not None:
            self.hits += 1
            return json.loads(cached)
        self.fetches += 1
        episode = self.client.episode(mpid)
        self.cache.set(mpid, json.dumps(episode) if episode is not None else _MISSING)
        return episode


# -- message shape -----------------------------------------------------------------------------

def has_attachments(episode: dict | None) -> bool:
    mediapackage = (episode or {}).get("mediapackage") or {}
    attachments = mediapackage.get("attachments")
    return bool(as_list(attachments.get("attachment")) if isinstance(attachments, dict) else False)


def _utc_iso(value: Any, default_tz: dt.tzinfo = UTC) -> str | None:
    if value in (None, ""):
        return None
    try:
        return parse_created(value, default_tz).astimezone(UTC).isoformat()
    except ValueError:
        return str(value)  # keep what the server said rather than lose it


def _series_fields(mediapackage: dict) -> dict:
    series = mediapackage.get("series")
    if not series:
        return {}
    series = str(series)
    # DCE series ids are YYYYTTNNNNN: year, term, course number ("cdn" in the original's
    # messages, "crn" in its episode index; both mean the course registration number).
    return {"course": mediapackage.get("seriestitle"), "series": series,
            "year": series[:4], "term": series[4:6], "cdn": series[6:11]}


def _stills(mediapackage: dict) -> dict:
    attachments = mediapackage.get("attachments")
    items = as_list(attachments.get("attachment")) if isinstance(attachments, dict) else []
    out = {}
    for kind in ("presenter", "presentation"):
        for item in items:
            if isinstance(item, dict) and item.get("type") == f"{kind}/player+preview" and item.get("url"):
                out[f"{kind}_still"] = item["url"]
                break
    return out


def episode_fields(episode: dict | None, server_tz: dt.tzinfo = UTC) -> dict:
    """The ``episode`` object of a message: what is known ({} when the episode is unknown)."""
    if not episode:
        return {}
    mp = episode.get("mediapackage") or {}
    fields: dict[str, Any] = {
        "title": mp.get("title") or episode.get("dcTitle"),
        "duration": as_int(mp.get("duration")),
        "start": _utc_iso(mp.get("start") or episode.get("dcCreated"), server_tz),
    }
    fields.update(_series_fields(mp))
    if episode.get("dcType") is not None:
        fields["type"] = episode["dcType"]
    if episode.get("dcDescription") is not None:
        fields["description"] = episode["dcDescription"]
    fields.update(_stills(mp))
    return {k: v for k, v in fields.items() if v is not None}


def _is_playing_code(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    return as_int(value, 0) or 0


def build_message(action: dict, episode: dict | None, server_tz: dt.tzinfo = UTC) -> dict:
    """One user action in the original's message shape."""
    session = action.get("sessionId")
    if not isinstance(session, dict):  # some versions flatten it to the id string
        session = {"sessionId": session}
    chain = [part.strip() for part in str(session.get("userIp") or "").split(",") if part.strip()]
    playing = _is_playing_code(action.get("isPlaying"))
    user_id = session.get("userId")
    message: dict[str, Any] = {
        "action_id": action.get("id"),
        "timestamp": _utc_iso(action.get("created"), server_tz),
        "mpid": action.get("mediapackageId"),
        "session_id": session.get("sessionId"),
        "huid": str(user_id) if user_id not in (None, "") else None,
        "useragent": session.get("userAgent"),
        "ip": chain[0] if chain else None,
        "proxies": chain[1:],
        # DCE's fork reports isPlaying 2 for a live stream (since Feb 2017).
        "is_live": 1 if playing == 2 else 0,
        "action": {
            "type": action.get("type"),
            "inpoint": as_int(action.get("inpoint")),
            "outpoint": as_int(action.get("outpoint")),
            "length": as_int(action.get("length")),
            "is_playing": playing > 0,
        },
        "episode": episode_fields(episode, server_tz),
    }
    for n, proxy in enumerate(chain[1:], 1):
        message[f"proxy{n}"] = proxy  # the original's flat keys, for its consumers
    return message


class Enricher:
    """Actions → messages, counting episodes that are unknown or have no attachments."""

    def __init__(self, lookup: EpisodeLookup, server_tz: dt.tzinfo = UTC) -> None:
        self.lookup, self.server_tz = lookup, server_tz
        self.episodes_missing = 0  # actions whose episode the search endpoint does not know
        self.without_attachments = 0  # actions whose episode has no attachments

    def messages(self, actions: Iterable[dict]) -> list[dict]:
        out = []
        for action in actions:
            episode = self.lookup.get(action.get("mediapackageId"))
            if episode is None:
                self.episodes_missing += 1
            elif not has_attachments(episode):
                self.without_attachments += 1
            out.append(build_message(action, episode, self.server_tz))
        return out


def episode_document(episode: dict, live: LiveInfo | None = None, server_tz: dt.tzinfo = UTC) -> dict:
    """A record for the daily episode asset (the original's ``load_episodes`` document).

    Unlike the successor, an episode without attachments still yields a document.
    """
    mp = episode.get("mediapackage") or {}
    doc = episode_fields(episode, server_tz)
    doc["mpid"] = mp.get("id") or episode.get("id")
    if "cdn" in doc:
        doc["crn"] = doc.pop("cdn")
    attachments = mp.get("attachments")
    items = as_list(attachments.get("attachment")) if isinstance(attachments, dict) else []
    slides = []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "presentation/segment+preview":
            match = re.search(r"time=([^;]+)", str(item.get("ref") or ""))
            slides.append({"img": item.get("url"), "time": match.group(1) if match else None})
    doc["slides"] = slides
    if live is not None:
        doc["live_stream"] = 1 if live.live_stream else 0
        for key, value in (("live_start", live.live_start), ("live_end", live.live_end),
                           ("available", live.available)):
            if value is not None:
                doc[key] = value.isoformat()
        if live.live_duration_ms is not None:
            doc["live_duration"] = live.live_duration_ms
    return doc
