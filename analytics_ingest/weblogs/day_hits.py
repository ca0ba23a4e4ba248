"""The hits a site-local day received, read back as columns from the files the ledger says feed it.

Pretables (from our own hits), the archive check and usage reports need "what was imported into
day D". The ledger stores no hit; each file's hit store (:mod:`.hit_store`, written by its import)
holds the file's tracked hits as parsed under its plan. A day is the rows of those stores whose
time falls in the site-local day, less the lines Matomo rejected (the ledger lists them). A store
that is missing or stale is rebuilt from the log with the file's recorded plan, once; a log that is
gone is no loss while its store is there. Streaming: about 65,536 hits at a time, whatever the size
of the day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..logs import open_log, scan
from ..site_time import LocalDay
from ..vocabulary import DOWNLOADS, FILE_INVALID, PAGES
from . import hit_store
from .importer import options_from_plan


@dataclass
class DayHitsStats:
    files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    hits: Counter = field(default_factory=Counter)  # category -> hits on the day
    bots_tracked: int = 0  # tracked hits flagged as bots (enable_bots)
    rejected_skipped: int = 0  # lines Matomo refused: not in Matomo, so not in the day
    stores_rebuilt: int = 0  # files whose hit store had to be rebuilt from the log


def hit_store_dir(settings) -> Path:
    """Where the import keeps each file's hit store: ``<home>/hits``."""
    return Path(settings.home) / "hits"


def rebuild_store(directory: Path, record):
    """Re-read ``record``'s log with its recorded plan into a fresh hit store; return it opened.

    Only the content the ledger recorded is stored: a file that grew, shrank or was replaced since
    its import is refused (its new lines are not imported yet, or it is another file now), and so
    is one that cannot be read to its end. Raises :class:`InputError` (one line) then."""
    from .file_identity import is_recorded_content

    if not is_recorded_content(record.path, record):
        raise InputError(f"{record.path} is no longer the content that was imported (it grew or was replaced); "
                         "import it again, then rerun this step")
    options = options_from_plan(json.loads(record.plan), batch_size=0)  # as at its first import
    key = hit_store.record_key(record)
    try:
        writer = hit_store.HitStoreWriter(hit_store.store_path(directory, record.id), key)
    except OSError as exc:
        raise InputError(f"cannot write hit stores in {directory}: {exc.strerror or exc}; "
                         "check the state directory (ANALYTICS_INGEST_HOME)") from None
    try:
        with open_log(record.path) as source:
            stats = scan(source, format_name=options.format_name, regex=options.regex,
                         date_format=options.date_format, options=options.classify, on_tracked=writer.on_tracked)
    except OSError as exc:
        writer.abort()
        raise InputError(f"cannot re-read {record.path}: {exc.strerror or exc}; "
                         "restore the file or re-import the day") from None
    except BaseException:
        writer.abort()
        raise
    if stats.incomplete:
        writer.abort()
        raise InputError(f"cannot re-read {record.path} to its end ({stats.incomplete_reason or 'incomplete'}); "
                         "restore the file or re-import the day")
    try:
        published = writer.commit()
    except OSError as exc:
        writer.abort()
        raise InputError(f"cannot publish the hit store of {record.path} in {directory} ({exc.strerror or exc}); "
                         "run this step again, and check the free space of the state directory") from None
    if not published:
        raise InputError(f"cannot write the hit store of {record.path} in {directory}; "
                         "check the free space of the state directory (ANALYTICS_INGEST_HOME)")
    for _ in range(20):  # another rebuild of the same file may be swapping its store in place
        store = hit_store.open_store(writer.path, key)
        if store is not None:
            return store
        time.sleep(0.05)
    raise InputError(f"the hit store of {record.path} keeps being replaced (another step rebuilds it); "
                     "run this step again")


class DayHits:
    """The hits delivered to Matomo on one site-local day, as Arrow tables, file by file.

    ``records``: read only these of the day's file records (default: every file feeding the day).
    :attr:`stats` fills in while :meth:`tables` is read."""

    def __init__(self, directory: str | os.PathLike, ledger, site, day: dt.date, *, records=None) -> None:
        self.directory = Path(directory)
        self.ledger, self.site, self.day = ledger, site, day
        self.records = records
        self.stats = DayHitsStats()

    def tables(self, columns=hit_store.COLUMNS) -> Iterator[tuple[object, "pa.Table"]]:  # noqa: F821
        """``(record, table)`` pairs: the day's rows of a batch of parts of one file's store, with
        ``columns`` (``line_no``, ``time``, ``download`` and ``bot`` are always read)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        stats = self.stats
        start, end = LocalDay(self.site.timezone).bounds_utc(self.day)
        lo, hi = (pa.scalar(moment, pa.timestamp("s", tz="UTC")) for moment in (start, end))
        wanted = list(dict.fromkeys(("line_no", "time", "download", "bot", *columns)))
        ledger = self.ledger
        records = ledger.files_feeding_day(self.site.id, self.day) if self.records is None else self.records
        for record in records:
            if record.status == FILE_INVALID or not record.plan:
                continue
            path = hit_store.store_path(self.directory, record.id)
            store = hit_store.open_store(path, hit_store.record_key(record))
            if store is None:
                if not os.path.exists(record.path):
                    stats.missing_files.append(record.path)
                    continue
                store = rebuild_store(self.directory, record)
                stats.stores_rebuilt += 1
            stats.files.append(record.path)
            rejected = ledger.rejected_lines(record.id)
            rejected_array = pa.array(sorted(rejected), pa.int64()) if rejected else None
            for table in store.tables(wanted, start, end):
                times = table.column("time")
                mask = pc.and_(pc.greater_equal(times, lo), pc.less(times, hi))
                if rejected_array is not None:
                    refused = pc.and_(mask, pc.is_in(table.column("line_no"), value_set=rejected_array))
                    stats.rejected_skipped += pc.sum(refused).as_py() or 0
                    mask = pc.and_(mask, pc.invert(refused))
                table = table.filter(mask)
                if not table.num_rows:
                    continue
                downloads = pc.sum(table.column("download")).as_py() or 0
                stats.hits[DOWNLOADS] += downloads
                stats.hits[PAGES] += table.num_rows - downloads
                stats.bots_tracked += pc.sum(table.column("bot")).as_py() or 0
                yield record, table
        stats.hits.setdefault(PAGES, 0)
        stats.hits.setdefault(DOWNLOADS, 0)


