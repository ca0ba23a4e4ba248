"""Per-day Opencast work for the Dagster layer (and anyone else): one day's user actions, one
day's episodes, and the day's Matomo-event journal delivered through the exactly-once importer.

A day is a fixed window [00:00, 24:00) in the server's zone, harvested without touching the
incremental cursor, so a backfill of old days never moves the live harvester.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_file
from ..errors import ConfigError, InputError
from .enrich import episode_document
from .harvest import MemoryCursorStore
from .run import HarvestSummary, build, harvest_once
from .settings import ENV_OUTPUT, OpencastSettings


def day_window(settings: OpencastSettings, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), settings.server_tz)
    return start, start + dt.timedelta(days=1)


def day_output(settings: OpencastSettings, day: dt.date) -> str:
    template = settings.output or str(Path(settings.home) / "opencast" / "useractions" / "{day}.jsonl")
    return template.replace("{day}", day.isoformat())


def journal_path(settings: OpencastSettings, day: dt.date) -> Path:
    return Path(settings.home) / "opencast" / "matomo" / f"{day.isoformat()}.jsonl"


def harvest_day(settings: OpencastSettings, day: dt.date, **clients) -> tuple[HarvestSummary, str, str | None]:
    """Harvest the day's actions into the configured output (and the Matomo journal when a site
    is configured). Returns (summary, output, journal path or None)."""
    output = day_output(settings, day)
    if output == "-":
        raise ConfigError(f"{ENV_OUTPUT}=- (stdout) is for the CLI; give sqs://QUEUE or a file path")
    journal = str(journal_path(settings, day)) if settings.matomo_site else None
    if journal:
        Path(journal).parent.mkdir(parents=True, exist_ok=True)
    if not output.startswith(("sqs://", "https://sqs.")):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    harvester, enricher, sink = build(settings, output=output, allow_long_span=True,
                                      cursor_store=MemoryCursorStore(), **clients)
    start, end = day_window(settings, day)
    summary = harvest_once(harvester, enricher, sink, start=start, end=end, journal=journal, update_cursor=False)
    return summary, output, journal


@dataclass
class EpisodesResult:
    path: str
    episodes: int = 0
    without_attachments: int = 0
    with_live_info: int = 0
    titles: list[str] = field(default_factory=list)


EPISODE_COLUMNS = ("mpid", "title", "course", "series", "type", "year", "term", "crn", "duration", "start",
                   "created", "live_stream", "live_start", "live_end", "live_duration", "available", "slides")


def episodes_day(settings: OpencastSettings, day: dt.date, *, session=None) -> EpisodesResult:
    """Episodes created on ``day`` as ``opencast/episodes/<day>.parquet`` (atomic)."""
    from .client import OpencastClient

    client = OpencastClient(settings.url, settings.user, settings.password, session=session,
                            server_tz=settings.server_tz, admin_url=settings.admin_url)
    path = Path(settings.home) / "opencast" / "episodes" / f"{day.isoformat()}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    result = EpisodesResult(path=str(path))
    rows = []
    for episode in client.episodes_created(day):
        live = client.live_info(str((episode.get("mediapackage") or {}).get("id") or episode.get("id"))) \
            if settings.admin_url else None
        doc = episode_document(episode, live, settings.server_tz)
        result.episodes += 1
        if not doc.get("slides"):
            result.without_attachments += 1
        if live is not None:
            result.with_live_info += 1
        if doc.get("title") and len(result.titles) < 10:
            result.titles.append(str(doc["title"]))
        rows.append({c: _cell(doc.get(c)) for c in EPISODE_COLUMNS})
    table = pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in EPISODE_COLUMNS]))
    with atomic_file(path, "wb") as handle:
        pq.write_table(table, handle)
    return result


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def deliver_journal(ingest_settings, ledger, site_id: int, journal: str):
    """Import the day's Matomo-event journal: each action reaches Matomo exactly once, however
    often the day is harvested again (the journal only grows; the importer resumes)."""
    from ..engine import make_importer
    from ..logs.opencast_events import OPENCAST_EVENTS
    from ..weblogs.importer import ImportOptions

    if not Path(journal).exists() or Path(journal).stat().st_size == 0:
        raise InputError(f"{journal} is empty: no user action of the day to send to Matomo")
    with make_importer(ingest_settings, ledger, site_id) as importer:
        return importer.import_file(journal, ImportOptions(lanes=2, format_name=OPENCAST_EVENTS))
