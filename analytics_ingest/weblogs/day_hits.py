"""The hits a site-local day received, read back from the log files the ledger says feed it.

Pretables (from our own hits), the archive check and usage reports need "what was imported into
day D". Nothing per hit is stored: a day's files are re-read with the *plan* recorded at their
first import (format, filters), so the hits are exactly the ones the importer tracked, minus the
lines Matomo rejected. Streaming: one hit at a time, whatever the size of the day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable
from zoneinfo import ZoneInfo

from ..errors import InputError
from ..hits import Hit
from ..logs import open_log, scan
from ..vocabulary import DOWNLOADS, FILE_INVALID, PAGES
from .classify import ClassifyOptions


@dataclass
class DayHitsStats:
    files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    hits: Counter = field(default_factory=Counter)  # category -> hits on the day
    bots_tracked: int = 0  # tracked hits flagged as bots (enable_bots)
    rejected_skipped: int = 0  # lines Matomo refused: not in Matomo, so not in the day


class LocalDay:
    """UTC ``cdt`` → site-local day, cached per UTC hour (every zone offset is whole quarter hours,
    but an hour's cache is exact for all real zones except a few with 30/45-minute offsets, which
    get a per-minute key)."""

    def __init__(self, timezone: str) -> None:
        self.tz = dt.timezone.utc if timezone in ("UTC", "", None) else ZoneInfo(timezone)
        probe = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        offsets = {probe.astimezone(self.tz).utcoffset(), (probe + dt.timedelta(days=182)).astimezone(self.tz).utcoffset()}
        self._key_len = 13 if all(o.total_seconds() % 3600 == 0 for o in offsets if o is not None) else 16
        self._cache: dict[str, str] = {}

    def __call__(self, cdt: str) -> str:
        key = cdt[: self._key_len]
        day = self._cache.get(key)
        if day is None:
            fmt = "%Y-%m-%d %H" if self._key_len == 13 else "%Y-%m-%d %H:%M"
            utc = dt.datetime.strptime(key, fmt).replace(tzinfo=dt.timezone.utc)
            day = utc.astimezone(self.tz).date().isoformat()
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = day
        return day

    def bounds_utc(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) of the local day in UTC (23 or 25 hours across DST changes)."""
        start = dt.datetime.combine(day, dt.time(), self.tz).astimezone(dt.timezone.utc)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.tz).astimezone(dt.timezone.utc)
        return start, end


def _classify_options(plan: dict) -> ClassifyOptions:
    raw = plan.get("classify") or {}
    return ClassifyOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def scan_day(ledger, site, day: dt.date, on_hit: Callable[[Hit, str, bool], None], *, records=None) -> DayHitsStats:
    """Call ``on_hit(hit, category, is_bot)`` for every hit delivered to Matomo on the site-local
    ``day``, file by file in ledger order; return what was read.

    Only files with a recorded plan (imported at least once) are read; a file that vanished from
    disk is listed in ``missing_files`` (its hits are in Matomo but cannot be re-read).
    ``records``: read only these of the day's file records (default: every file feeding the day).
    """
    stats = DayHitsStats()
    local_day = LocalDay(site.timezone)
    wanted = day.isoformat()
    counts = stats.hits
    for record in ledger.files_feeding_day(site.id, day) if records is None else records:
        if record.status == FILE_INVALID or not record.plan:
            continue
        if not os.path.exists(record.path):
            stats.missing_files.append(record.path)
            continue
        plan = json.loads(record.plan)
        rejected = frozenset(ledger.rejected_lines(record.id))
        stats.files.append(record.path)

        def on_tracked(hit: Hit, category: str, is_bot: bool) -> None:
            if local_day(hit.cdt) != wanted:
                return
            if rejected and hit.line_no in rejected:
                stats.rejected_skipped += 1
                return
            counts[category] += 1
            if is_bot:
                stats.bots_tracked += 1
            on_hit(hit, category, is_bot)

        try:
            with open_log(record.path) as source:
                scan(source, format_name=plan.get("format_name"), regex=plan.get("regex"),
                     date_format=plan.get("date_format"), options=_classify_options(plan), on_tracked=on_tracked)
        except OSError as exc:
            raise InputError(f"cannot re-read {record.path} for day {wanted}: {exc.strerror or exc}; "
                             "restore the file or re-import the day") from None
    counts.setdefault(PAGES, 0)
    counts.setdefault(DOWNLOADS, 0)
    return stats


def tracked_counts(ledger, site, day: dt.date) -> DayHitsStats:
    """Pages and downloads delivered on ``day`` (what Matomo's reports must show)."""
    return scan_day(ledger, site, day, lambda hit, category, is_bot: None)
