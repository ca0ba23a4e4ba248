"""The ``matomo_archive`` stage: re-archive a day in Matomo after new hits reached it, and only then,
then check that Matomo's reports hold what the ledger says was imported.

"New hits" is read from the ledger: the last import attempt that delivered hits to a file feeding
the day, compared with the deliveries the day's last archive covered. GDS archived whatever
happened; EEA invalidated every imported day. Neither checked the reports afterwards.

The check expects in the reports what the ledger delivered minus what Matomo's tracker is shown to
drop while answering "tracked" (its bot IP ranges, the excluded IPs and user agents:
:mod:`.matomo.exclusions`). When the reports still hold fewer, the message names the step that
fixes it: the import when the ledger has not delivered the day's files whole, ``matomo_archive``
when the archive predates the last delivery, else what to look at. One shortfall is allowed: hits
sent without ``bots=1`` whose user agent Matomo's DeviceDetector calls a bot
(:mod:`.matomo.device_bots`), which Matomo drops too but whose list differs by release, so they
are a tolerance: the check passes when only those are missing, and says how many. DeviceDetector's
list is narrow (a bare ``Mozilla/5.0`` or ``curl`` is not a bot), so a silent archive failure,
which misses human hits, still fails.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field

from .columns import per_value
from .matomo.api import MatomoApi
from .matomo.archive import NoRunner, invalidate_days
from .matomo.device_bots import DeviceBots
from .matomo.exclusions import REASONS, MatomoExclusions
from .matomo.reports import compare_with_ledger, day_totals
from .site_writer import site_writer
from .vocabulary import DOWNLOADS, FILE_INVALID, FILE_LOADED, PAGES
from .weblogs.day_hits import DayHits, hit_store_dir

METRIC_CATEGORY = {"nb_pageviews": PAGES, "nb_downloads": DOWNLOADS}


@dataclass
class ArchiveDayResult:
    site_id: int
    day: str
    archived: bool
    reason: str  # why it was archived, or why it was skipped (one line)
    runner: str = ""
    command: str = ""
    output_tail: str = ""
    seconds: float = 0.0
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


def archive_day(settings, ledger, site, day: dt.date, *, runner=None, api=None, force: bool = False,
                wait: float | None = None) -> ArchiveDayResult:
    """Invalidate the day's reports and run the archiver, if new hits arrived (or ``force``), as the
    site's one Matomo writer (``wait``: seconds to wait for another; None: as long as it takes).
    ``runner``: the configured one (:class:`~.matomo.archive.ArchiveSettings`); None: Matomo's own cron."""
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
    runner = runner or NoRunner()
    # A writer of the site: archiving while an import still sends would archive half a day.
    with site_writer(ledger, site.id, f"archive of {day.isoformat()}", wait=wait):
        last = ledger.last_delivery(site.id, day) or last  # what an import that ran meanwhile added
        invalidate_days(api, site.id, [day])
        run = runner.run(site.id, day, day)
        ledger.record_archive(site.id, day, deliveries_through=last, runner=run.runner,
                              message=(run.output_tail or "")[-500:] or None)
    result.archived, result.reason = True, reason
    result.runner, result.command, result.output_tail = run.runner, run.command, run.output_tail
    result.seconds, result.detail = run.seconds, dict(run.detail)
    return result


@dataclass
class ReportCheck:
    checked: bool
    passed: bool
    description: str  # one line; when the counts disagree it ends with the next step
    expected: dict = field(default_factory=dict)  # metric -> in Matomo's reports: delivered - excluded
    reported: dict = field(default_factory=dict)  # metric -> in Matomo's reports
    delivered: dict = field(default_factory=dict)  # metric -> delivered according to the ledger
    excluded: dict = field(default_factory=dict)  # reason -> delivered hits Matomo's tracker dropped
    bot_agents: int = 0  # delivered without bots=1, with a DeviceDetector bot agent: Matomo may have dropped them
    bot_list: str = ""  # which DeviceDetector list said so
    unread: list = field(default_factory=list)  # Matomo settings the check could not read
    next_step: str = ""

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())


@dataclass
class _Tally:
    delivered: Counter = field(default_factory=Counter)  # category -> hits
    excluded: dict = field(default_factory=lambda: {r: Counter() for r in REASONS})  # reason -> category -> hits
    bot_agents: Counter = field(default_factory=Counter)  # category -> hits with a DeviceDetector bot agent
    missing_files: list = field(default_factory=list)


# Matomo's verdict for each combination of (bot range, excluded IP, excluded agent, bots=1), from
# the one definition of its order: a hit's four findings, packed as bits, index this list.
_VERDICTS = [MatomoExclusions.reason_of(bool(c & 1), bool(c & 2), bool(c & 4), bool(c & 8)) for c in range(16)]


def _tally(directory, ledger, site, day: dt.date, exclusions: MatomoExclusions, device_bots: DeviceBots) -> _Tally:
    """The day's delivered pages and downloads, from its files' hit stores file by file (each file's
    plan says whether its requests carried ``bots=1``), and which of them Matomo excludes."""
    import numpy as np
    import pyarrow as pa

    tally = _Tally()
    addresses: dict = {}
    agents: dict = {}
    verdicts = np.array(_VERDICTS, dtype=object)
    for record in ledger.files_feeding_day(site.id, day):
        if record.status == FILE_INVALID or not record.plan:
            continue
        enable_bots = bool((json.loads(record.plan).get("classify") or {}).get("enable_bots"))
        day_hits = DayHits(directory, ledger, site, day, records=[record])
        for _record, hits in day_hits.tables(columns=("ip", "user_agent")):
            in_bot_range, in_excluded_ips = (a.to_numpy(zero_copy_only=False) for a in per_value(
                hits.column("ip"), exclusions.ip_kind, [pa.bool_(), pa.bool_()], addresses))
            agent_excluded, bot_agent = (a.to_numpy(zero_copy_only=False) for a in per_value(
                hits.column("user_agent"), lambda agent: (exclusions.agent_excluded(agent), bool(device_bots(agent))),
                [pa.bool_(), pa.bool_()], agents))
            # the request carried bots=1: the classifier's bot flag, or the file's enable_bots
            bots = hits.column("bot").to_numpy() | enable_bots
            reasons = verdicts[in_bot_range * 1 + in_excluded_ips * 2 + agent_excluded * 4 + bots * 8]
            # no rule applies, sent without bots=1, and DeviceDetector calls the agent a bot
            maybe_dropped = np.equal(reasons, None) & ~bots & bot_agent
            download = hits.column("download").to_numpy()
            for category, rows in ((DOWNLOADS, download), (PAGES, ~download)):
                tally.delivered[category] += int(rows.sum())
                for reason in REASONS:
                    tally.excluded[reason][category] += int((rows & (reasons == reason)).sum())
                tally.bot_agents[category] += int((rows & maybe_dropped).sum())
        tally.missing_files += day_hits.stats.missing_files
    return tally


def check_reports(settings, ledger, site, day: dt.date, *, api=None) -> ReportCheck:
    """Compare Matomo's page views and downloads of the day with the hits the ledger delivered,
    less those Matomo's tracker is shown to have excluded."""
    if not settings.offline:
        api = api or MatomoApi(settings.matomo_url, settings.matomo_token)
        exclusions = MatomoExclusions.from_api(api, site.id)
    else:
        exclusions = MatomoExclusions()
    device_bots = DeviceBots()
    tally = _tally(hit_store_dir(settings), ledger, site, day, exclusions, device_bots)
    delivered = {m: tally.delivered[c] for m, c in METRIC_CATEGORY.items()}
    excluded_by_metric = {m: sum(tally.excluded[r][c] for r in REASONS) for m, c in METRIC_CATEGORY.items()}
    expected = {m: delivered[m] - excluded_by_metric[m] for m in METRIC_CATEGORY}
    out = ReportCheck(False, False, "", expected, {}, delivered,
                      {r: sum(tally.excluded[r].values()) for r in REASONS},
                      sum(tally.bot_agents.values()), device_bots.name, list(exclusions.unread))
    if tally.missing_files:
        out.description = (f"{len(tally.missing_files)} imported file(s) of {day} are gone, e.g. "
                           f"{tally.missing_files[0]}: cannot count what was imported")
        return out
    if settings.offline:
        out.passed, out.description = True, "not checked: offline (MATOMO_URL unset), the outbox has no reports"
        return out
    reported = day_totals(api, site.id, day)
    verdict = compare_with_ledger(reported, expected["nb_pageviews"], expected["nb_downloads"],
                                  exact=site.archive.exact)
    out.checked, out.passed = True, verdict.passed
    out.reported = {name: m.actual for name, m in verdict.metrics.items()}
    where = f"site {site.id} on {day}"
    excluded = (f"{out.excluded_total} of {sum(delivered.values())} delivered hits excluded by Matomo "
                f"({', '.join(f'{n} {r}' for r, n in out.excluded.items() if n)})") if out.excluded_total else ""
    short = {n: -m.difference for n, m in verdict.metrics.items() if m.difference < 0}
    may_drop = {m: tally.bot_agents[c] for m, c in METRIC_CATEGORY.items()}
    if short and all(n <= may_drop[m] for m, n in short.items()) and not _too_many(verdict, exact=site.archive.exact):
        # Matomo's DeviceDetector dropped hits whose agent it knows as a bot; the list here is a
        # release apart from the server's, so these hits are a tolerance, never a certainty.
        out.passed = True
        dropped = ", ".join(f"{n} {_label(m)}" for m, n in short.items())
        out.description = (f"Matomo holds every delivered hit for {where} except {dropped} of the "
                           f"{out.bot_agents} with a user agent Matomo's DeviceDetector calls a bot ({device_bots.name}), "
                           "which Matomo drops" + (f"; {excluded}" if excluded else ""))
        return out
    if verdict.passed:
        out.description = verdict.description + (f"; {excluded}" if excluded else "")
        return out
    if not short:  # more in Matomo than expected, with exact: compare_with_ledger says why
        out.description = verdict.description + (f" ({excluded} were subtracted)" if excluded else "")
        return out
    out.next_step = _next_step(ledger, site, day, out.bot_agents)
    parts = ", ".join(f"{m.actual} of {m.expected} expected {_label(n)} ({-m.difference} missing)"
                      for n, m in verdict.metrics.items() if m.difference < 0)
    unread = f"; not read: {'; '.join(out.unread)}" if out.unread else ""
    out.description = (f"Matomo reports {parts} for {where}" + (f" ({excluded})" if excluded else "")
                       + f": {out.next_step}{unread}")
    return out


def _next_step(ledger, site, day: dt.date, bot_agents: int) -> str:
    """What fixes reports that lack delivered hits, from the ledger: the import, the archive, or
    (the archive ran after the last delivery) what to look at."""
    incomplete = [r for r in ledger.files_feeding_day(site.id, day) if r.status not in (FILE_LOADED, FILE_INVALID)]
    if incomplete:
        return (f"the ledger has not delivered every hit of {day} ({len(incomplete)} file(s) not loaded, e.g. "
                f"{incomplete[0].path} is {incomplete[0].status}): run matomo_import for {day}, then matomo_archive")
    needed, why, _last = archive_needed(ledger, site, day)
    if needed:
        return f"Matomo's reports predate the last delivery ({why}): re-run matomo_archive for {day}"
    record = ledger.archive_record(site.id, day) or {}
    if record.get("runner") == "none":
        return ("no archiver ran (MATOMO_ARCHIVE_RUNNER=none): Matomo's own core:archive cron recomputes the day; "
                "check again after it ran, or set a runner and re-run matomo_archive")
    when = record.get("archived_at")
    when = f"{when:%Y-%m-%d %H:%M} UTC" if isinstance(when, dt.datetime) else str(when)
    bots = (f"more than the {bot_agents} delivered hits with a DeviceDetector bot agent, "
            if bot_agents else "")
    return (f"the archive of {when} ({record.get('runner')}) ran after the last delivery yet misses them: read its "
            "output_tail, then invalidate the day and run core:archive by hand (matomo_archive skips a day it "
            f"archived); if still short, Matomo dropped hits this check cannot count ({bots or 'DeviceDetector bots, '}"
            "[Tracker] exclude_requests, referrer spam, exclude_unknown_urls)")


def _too_many(verdict, *, exact: bool) -> bool:
    """With ``exact``, a metric above what was delivered is a failure whatever else is short."""
    return exact and any(m.difference > 0 for m in verdict.metrics.values())


def _label(metric: str) -> str:
    return metric.removeprefix("nb_")
