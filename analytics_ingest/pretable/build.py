"""Build one site-day's pretable and move the day to Pretable in the ledger.

When may a day be extracted? When it is Loaded, and -- unless the site turns it off -- its
neighbours D-1 and D+1 are Loaded too: files are cut by name while sessions cross midnight
(SciELO waited for D-2, D-1 and D+1). A neighbour before the site's first day does not exist and
does not block.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, IngestError, InputError
from ..site_time import LocalDay
from ..vocabulary import DAY_CALCULATED, DAY_DONE, DAY_LOADED, DAY_PRETABLE, DAY_STATUSES
from ..weblogs.day_hits import DayHits, hit_store_dir
from .agents import AgentFacts, agents_cache_path
from .from_hits import HitRows, open_geolocator
from .from_matomo import matomo_rows
from .matomo_rules import DEFAULT_RULES, UrlRules
from .site_rules import url_rules_from_api
from .table import PretableWriter

LOADED_OR_LATER = DAY_STATUSES[DAY_STATUSES.index(DAY_LOADED):]


class NotReady(IngestError):
    """The day (or a neighbour) is not Loaded yet; the message says which."""


@dataclass
class PretableResult:
    site_id: int
    day: str
    source: str
    tsv: str
    parquet: str
    rows: int = 0
    robots_excluded: int = 0
    files_read: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    geolocated: bool = False
    url_rules: str = ""  # whose URL settings the hits went through (source hits)
    unread: list[str] = field(default_factory=list)  # Matomo settings that could not be read
    seconds: float = 0.0
    day_status: str = ""


def pretable_paths(settings, site, day: dt.date) -> tuple[Path, Path]:
    folder = Path(settings.home) / "pretables" / site.key
    return folder / f"{day.isoformat()}.tsv", folder / f"{day.isoformat()}.parquet"


def neighbours_ready(ledger, site, day: dt.date) -> list[str]:
    """Why the day cannot be extracted yet (empty list: it can)."""
    waiting = []
    status = ledger.day_status(site.id, day)
    if status not in LOADED_OR_LATER:
        waiting.append(f"{day} is {status or 'unknown'}, not loaded")
    if site.pretable.wait_for_neighbours:
        for other in (day - dt.timedelta(days=1), day + dt.timedelta(days=1)):
            if other < site.start_date:
                continue
            other_status = ledger.day_status(site.id, other)
            if other_status is None:
                # Never queued (no file ever arrived for it): derive it, so a day configured with
                # no expected files (expected_files count 0) counts as Loaded instead of blocking.
                other_status = ledger.recompute_day_status(site.id, other)
            if other_status not in LOADED_OR_LATER:
                waiting.append(f"neighbour {other} is {other_status or 'unknown'}, not loaded")
    return waiting


def site_url_rules(settings, site) -> tuple[UrlRules, list[str]]:
    """The URL settings of the site in Matomo (offline, with no Matomo to ask: a new site's)."""
    if settings.offline:
        return DEFAULT_RULES, []
    from ..matomo.api import MatomoApi

    return url_rules_from_api(MatomoApi(settings.matomo_url, settings.matomo_token), site.id)


def build_pretable(settings, ledger, site, day: dt.date) -> PretableResult:
    """Write ``pretables/<site>/<day>.tsv`` and ``.parquet``; the day becomes Pretable.

    Coordinates come from ``settings.geoip_db`` when set. Raises :class:`NotReady` (one line) when
    the day or a neighbour is not Loaded.
    """
    waiting = neighbours_ready(ledger, site, day)
    if waiting:
        raise NotReady(f"{site.key} {day}: pretable waits: {'; '.join(waiting)}; import the missing files first")
    source = site.pretable.source
    if source == "matomo_db" and not settings.matomo_db_url:
        raise ConfigError(f"site {site.key} takes its pretable from Matomo's database but MATOMO_DB_URL is not set; "
                          "set it (mysql+pymysql://user@host/matomo) or use pretable: {source: hits}")
    tsv, parquet = pretable_paths(settings, site, day)
    result = PretableResult(site_id=site.id, day=day.isoformat(), source=source, tsv=str(tsv), parquet=str(parquet))
    clock = time.perf_counter()
    with PretableWriter(tsv, parquet) as writer:
        if source == "matomo_db":
            start, end = LocalDay(site.timezone).bounds_utc(day)
            writer.write_many(matomo_rows(settings.matomo_db_url, settings.matomo_db_prefix, site.id, start, end))
        else:
            geo = open_geolocator(settings.geoip_db)
            result.geolocated = geo is not None
            rules, result.unread = site_url_rules(settings, site)
            result.url_rules = rules.source
            agents = AgentFacts(agents_cache_path(settings.home))
            rows = HitRows(site.main_url, geo, bots_sent=site.classify.enable_bots, agents=agents, rules=rules)
            day_hits = DayHits(hit_store_dir(settings), ledger, site, day)
            try:
                for _record, hits in day_hits.tables(columns=HitRows.COLUMNS):
                    writer.write_table(rows.table(hits))
            finally:
                if geo is not None:
                    geo.close()
                agents.save()
            stats = day_hits.stats
            result.robots_excluded = rows.robots_excluded
            result.files_read, result.missing_files = stats.files, stats.missing_files
            if stats.missing_files:
                # Their hits are in Matomo; a pretable without them would under-count silently.
                raise InputError(f"{site.key} {day}: {len(stats.missing_files)} imported file(s) are gone, e.g. "
                                 f"{stats.missing_files[0]}; restore them or use pretable: {{source: matomo_db}}")
    result.rows = writer.rows
    result.seconds = round(time.perf_counter() - clock, 3)
    ledger.advance_day(site.id, day, DAY_PRETABLE, after=(DAY_LOADED, DAY_PRETABLE, DAY_CALCULATED, DAY_DONE))
    result.day_status = ledger.day_status(site.id, day) or ""
    return result
