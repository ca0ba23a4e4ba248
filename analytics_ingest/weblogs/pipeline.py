"""Per-site, per-day steps of the log pipeline (Queue → Partial → Loaded), without Dagster.

The Dagster assets and sensors call these; so could any other scheduler. Each step reads and
writes the ledger, which stays the source of truth for what reached Matomo.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..engine import make_importer
from ..errors import IngestError
from ..vocabulary import FILE_INVALID, FILE_LOADED, FILE_PARTIAL, FILE_QUEUE, IGNORED_CATEGORIES, KIND_LOG
from . import file_identity
from .discovery import Observed, inspect_file, list_candidates
from .importer import ImportOptions, ImportResult

# Files in these states still have lines to deliver.
PENDING_STATUSES = ("queue", "loading", "partial", "failed")


@dataclass
class RegisteredFile:
    path: str
    size: int
    days: list[str]
    status: str
    reason: str | None = None
    new: bool = False


def register_file(ledger, site, observed: Observed) -> RegisteredFile:
    """Put one settled file in the ledger with the days its content covers (site-local days).

    The file is found by its content (:mod:`analytics_ingest.weblogs.file_identity`): a rotated or
    recompressed copy of a known log is that log, not a new file. A file whose content
    contradicts its name or does not look like a usable access log is registered as ``invalid``
    with the reason, so it shows up instead of vanishing.
    """
    verdict = inspect_file(observed.path, timezone=site.timezone)
    days = {dt.date.fromisoformat(d): n for d, n in verdict.days.items()}
    main_day = dt.date.fromisoformat(verdict.probable_day) if verdict.probable_day else None
    try:
        ident = file_identity.identify(ledger, site.id, observed.path, day=main_day,
                                       status=FILE_QUEUE if verdict.valid else FILE_INVALID)
    except IngestError as exc:  # a log re-written in place: imported only on request (--force)
        return RegisteredFile(path=observed.path, size=observed.size, days=sorted(verdict.days),
                              status=FILE_INVALID, reason=str(exc))
    record = ident.record
    new = ident.relation in (file_identity.NEW, file_identity.CONFLICT)
    if new:
        if not verdict.valid:
            ledger.update_file(record.id, invalid_reason=verdict.reason)
    else:
        fields = {}
        if record.path != ident.path:
            fields["path"] = ident.path  # where the content is now (renamed, rotated)
        if record.raw_size != ident.content.raw_size:
            fields["raw_size"] = ident.content.raw_size
        if main_day is not None and record.day is None:
            fields["day"] = main_day
        if ident.relation == file_identity.GROWN and record.status == FILE_LOADED:
            # rsync appended to a file already imported: its new lines are still to deliver (the
            # importer checks the old part is unchanged and resumes after what was delivered).
            fields["status"] = FILE_PARTIAL
        if fields:
            ledger.update_file(record.id, **fields)
    if days:
        ledger.set_file_days(record.id, days)
    record = ledger.get_file_by_id(record.id)
    return RegisteredFile(
        path=ident.path, size=observed.size, days=sorted(verdict.days), status=record.status,
        reason=record.invalid_reason, new=new,
    )


@dataclass
class QueueReport:
    site_id: int
    day: str
    expected: int
    files: list[dict] = field(default_factory=list)
    discovered: int = 0

    @property
    def found(self) -> int:
        """Files feeding the day that are not invalid: the ledger's ``found`` for the day."""
        return sum(1 for f in self.files if f["status"] != FILE_INVALID)


def sync_expected_files(ledger, site) -> None:
    """Copy the site's expected-files ranges from its configuration into the ledger."""
    from ..errors import ConfigError

    for expected in site.expected_files:
        try:
            ledger.set_expected_files(site.id, expected.start, expected.end, expected.count)
        except ValueError as exc:
            raise ConfigError(f"site {site.key}: expected_files: {exc}; fix the ranges in the sites file") from None


def queue_day(ledger, site, day: dt.date) -> QueueReport:
    """Queue: make sure every file of the site's log directory is in the ledger; list the day's."""
    sync_expected_files(ledger, site)
    report = QueueReport(site_id=site.id, day=day.isoformat(), expected=site.expected_on(day))
    known = {r.path: r for r in ledger.list_files(site_id=site.id)}
    for observed in list_candidates(site.log_dir, site.file_pattern):
        record = known.get(file_identity.resolve_path(observed.path))
        stored_size = None if record is None else (record.raw_size if record.raw_size is not None else record.size)
        if stored_size != observed.size:
            register_file(ledger, site, observed)
            report.discovered += 1
    for record in ledger.list_files(site_id=site.id, day=day):
        if record.kind != KIND_LOG:
            continue
        report.files.append({
            "path": record.path, "size": record.size, "status": record.status,
            "reason": record.invalid_reason or "",
        })
    ledger.recompute_day_status(site.id, day)
    return report


@dataclass
class DayImport:
    site_id: int
    day: str
    status: str = ""
    results: list[ImportResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def totals(self) -> dict:
        keys = ("lines_total", "tracked", "invalid", "delivered", "already_delivered", "rejected")
        out = {k: sum(getattr(r, k) for r in self.results) for k in keys}
        for category in IGNORED_CATEGORIES:
            out[category] = sum(r.ignored.get(category, 0) for r in self.results)
        seconds = sum(r.seconds for r in self.results)
        out["seconds"] = round(seconds, 3)
        out["lines_per_second"] = round(out["lines_total"] / seconds, 1) if seconds else 0.0
        return out


def import_day(settings, ledger, site, day: dt.date, *, policy=None) -> DayImport:
    """Import the day's queued, partial and failed files through the engine; never raises for
    one bad file (its error is reported and the day stays Partial)."""
    report = DayImport(site_id=site.id, day=day.isoformat())
    options = ImportOptions(lanes=site.lanes, batch_size=site.batch_size, format_name=site.format,
                            classify=site.classify)
    # Journals (replayed or harvested events) have their own stages; only the site's logs here.
    pending = [r for r in ledger.list_files(site_id=site.id, day=day)
               if r.status in PENDING_STATUSES and r.kind == KIND_LOG]
    if pending:
        with make_importer(settings, ledger, site.id, policy=policy, timezone=site.timezone) as importer:
            for record in pending:
                try:
                    report.results.append(importer.import_file(record.path, options))
                except IngestError as exc:
                    report.errors.append(f"{record.path}: {exc}")
    report.status = ledger.recompute_day_status(site.id, day)
    return report
