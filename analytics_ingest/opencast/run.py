"""One harvest pass: fetch → enrich → deliver (→ journal), then move the cursor.

Shared by the CLI and the Dagster wiring so both count and order things the same way. The
order matters: a page is delivered (and journaled) before the next is fetched, and the cursor
is saved only after the last page was delivered, so a failure repeats the window instead of
losing it; the boundary ids and the journal's own id check absorb the repeats.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .client import OpencastClient
from .deliver import JsonLinesSink, SqsSink, make_sink
from .enrich import EpisodeLookup, Enricher, make_episode_cache
from .harvest import CursorStore, Harvester, Window, open_cursor_store
from .matomo_events import append_to_journal
from .settings import OpencastSettings


@dataclass(frozen=True)
class HarvestSummary:
    window: Window
    fetched: int
    duplicates: int
    delivered: int
    without_attachments: int
    episodes_missing: int
    journaled: int
    cursor: str  # CursorState.to_json() after the pass
    cursor_saved: bool

    def line(self) -> str:
        return (
            f"harvest {self.window.start.isoformat()} → {self.window.end.isoformat()}: "
            f"fetched {self.fetched}, duplicates dropped {self.duplicates}, delivered {self.delivered}, "
            f"episodes without attachments {self.without_attachments}, episodes missing {self.episodes_missing}"
            + (f", journaled {self.journaled}" if self.journaled else "")
            + ("" if self.cursor_saved else ", cursor unchanged")
        )


def harvest_once(harvester: Harvester, enricher: Enricher, sink: SqsSink | JsonLinesSink, *,
                 start: dt.datetime | None = None, end: dt.datetime | None = None,
                 journal: str | None = None, update_cursor: bool | None = None) -> HarvestSummary:
    """Run one window through ``enricher`` into ``sink`` (and the Matomo journal when given)."""
    delivered = journaled = 0
    missing0, bare0 = enricher.episodes_missing, enricher.without_attachments

    def on_batch(actions: list[dict]) -> None:
        nonlocal delivered, journaled
        messages = enricher.messages(actions)
        delivered += sink.write(messages)
        if journal:
            journaled += append_to_journal(journal, messages)

    stats = harvester.run(on_batch, start=start, end=end, update_cursor=update_cursor)
    flush = getattr(enricher.lookup.cache, "flush", None)
    if flush:
        flush()
    return HarvestSummary(
        window=stats.window, fetched=stats.fetched, duplicates=stats.duplicates, delivered=delivered,
        without_attachments=enricher.without_attachments - bare0,
        episodes_missing=enricher.episodes_missing - missing0, journaled=journaled,
        cursor=stats.cursor.to_json(), cursor_saved=stats.cursor_saved,
    )


def build(settings: OpencastSettings, *, output: str, batch_size: int = 1000, allow_long_span: bool = False,
          cursor_store: CursorStore | None = None, session=None, sqs_client=None, s3_client=None,
          redis_client=None, timeout: float = 30.0):
    """Make the parts from settings: ``(harvester, enricher, sink)``. Clients are injectable."""
    client = OpencastClient(settings.url, settings.user, settings.password, timeout=timeout, session=session,
                            server_tz=settings.server_tz, admin_url=settings.admin_url)
    store = cursor_store or open_cursor_store(settings.cursor, s3_client=s3_client, legacy_tz=settings.server_tz)
    harvester = Harvester(client, store, max_span=settings.max_span, allow_long_span=allow_long_span,
                          batch_size=batch_size)
    if redis_client is not None:
        from .enrich import RedisEpisodeCache

        cache = RedisEpisodeCache(redis_client, settings.cache_expire)
    else:
        cache = make_episode_cache(settings.cache_expire, redis_url=settings.redis_url,
                                   path=settings.episode_cache_path)
    enricher = Enricher(EpisodeLookup(client, cache), settings.server_tz)
    sink = make_sink(output, sqs_client=sqs_client)
    return harvester, enricher, sink
