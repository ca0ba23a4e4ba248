"""The ``matomo_archive`` stage: re-archive a day in Matomo after new hits reached it, and only then,
then check that Matomo's reports hold what the ledger says was imported.

"New hits" is read from the ledger: the last import attempt that delivered hits to a file feeding
the day, compared with the deliveries the day's last archive covered. GDS archived whatever
happened; EEA invalidated every imported day. Neither checked the reports afterwards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .weblogs.day_hits import tracked_counts
from .matomo.api import MatomoApi
from .matomo.archive import invalidate_days, runner_from_env
from .matomo.reports import compare_with_ledger, day_totals
from .vocabulary import DOWNLOADS, PAGES


@dataclass
class ArchiveDayResult:
    site_id: int
    day: str
    archived: bool
    reason: str  # why it was archived, or why it was skipped (one line)
    runner: str = ""
    command: str = ""
    output_tail: str = ""
    duration_s: float = 0.0
    last_delivery: str | None = None
    detail: dict = field(default_factory=dict)


def archive_needed(ledger, site, day: dt.date) -> tuple[bool, str, dt.datetime | None]:
    """(needed, reason, last delivery) for the day, from the ledger alone."""
    last = ledger.last_delivery(site.id, day)
    if last is None:
        return False, "skipped: no hits were delivered to this day", None
    # No wait for the day to be Loaded here: replayed tracker requests reach days that have no
    # log files at all. The sensor only asks for complete days; a run asked for by hand, or by a
    # replay, archives what is there.
    record = ledger.archive_record(site.id, day)
    if record is not None and record["deliveries_through"] >= last:
        return False, (f"skipped: no new hits since the archive of {record['archived_at']:%Y-%m-%d %H:%M} UTC "
                       f"({record['runner']})"), last
    why = "never archived" if record is None else f"new hits since the archive of {record['archived_at']:%Y-%m-%d %H:%M} UTC"
    return True, why, last


def archive_day(settings, ledger, site, day: dt.date, *, runner=None, api=None, force: bool = False) -> ArchiveDayResult:
    """Invalidate the day's reports and run the archiver, if new hits arrived (or ``force``)."""
    needed, reason, last = archive_needed(ledger, site, day)
    result = ArchiveDayResult(site_id=site.id, day=day.isoformat(), archived=False, reason=reason,
                              last_delivery=last.isoformat() if last else None)
    if force and not needed and last is not None:
        needed, reason = True, "forced"
    if not needed:
        return result
    if settings.offline:
        result.reason = "skipped: offline (MATOMO_URL unset): the outbox has no reports to archive"
        return result
    api = api or MatomoApi(settings.matomo_url, settings.matomo_token)
    runner = runner or runner_from_env()
    invalidate_days(api, site.id, [day])
    run = runner.run(site.id, day, day)
    ledger.record_archive(site.id, day, deliveries_through=last, runner=run.runner,
                          message=(run.output_tail or "")[-500:] or None)
    result.archived, result.reason = True, reason
    result.runner, result.command, result.output_tail = run.runner, run.command, run.output_tail
    result.duration_s, result.detail = run.duration_s, dict(run.detail)
    return result


@dataclass
class ReportCheck:
    checked: bool
    passed: bool
    description: str
    expected: dict = field(default_factory=dict)
    reported: dict = field(default_factory=dict)


def check_reports(settings, ledger, site, day: dt.date, *, api=None) -> ReportCheck:
    """Compare Matomo's page views and downloads of the day with the hits the ledger delivered."""
    counts = tracked_counts(ledger, site, day)
    expected = {"nb_pageviews": counts.hits[PAGES], "nb_downloads": counts.hits[DOWNLOADS]}
    if counts.missing_files:
        return ReportCheck(False, False, f"{len(counts.missing_files)} imported file(s) of {day} are gone, e.g. "
                                         f"{counts.missing_files[0]}: cannot count what was imported", expected)
    if settings.offline:
        return ReportCheck(False, True, "not checked: offline (MATOMO_URL unset), the outbox has no reports", expected)
    api = api or MatomoApi(settings.matomo_url, settings.matomo_token)
    reported = day_totals(api, site.id, day)
    verdict = compare_with_ledger(reported, expected["nb_pageviews"], expected["nb_downloads"], exact=site.archive.exact)
    return ReportCheck(True, verdict.passed, verdict.description, expected,
                       {name: m.actual for name, m in verdict.metrics.items()})
