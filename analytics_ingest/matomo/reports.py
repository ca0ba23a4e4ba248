"""Read a day's totals from Matomo's reports and check them against what the ledger imported.

An archiver can exit 0 and still leave a day's reports stale (a PHP memory limit, a lock, a
misconfigured ``--force-date-range``). Comparing the archived totals with the ledger's count of
imported hits is the only way to notice, so the archive stage ends with :func:`compare_with_ledger`
(``archiving.check_reports`` first subtracts the hits Matomo's tracker excluded, and words the next
step from the ledger).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..errors import IngestError
from .api import MatomoApiError

METRICS = ("nb_pageviews", "nb_downloads")


class ReportError(IngestError):
    """Matomo's reports could not be read (one line: which call and why)."""


@dataclass(frozen=True)
class DayTotals:
    """One day's archived totals of one site (all zeros when Matomo has no data for it)."""

    idsite: int
    day: str  # YYYY-MM-DD
    nb_visits: int
    nb_actions: int
    nb_pageviews: int
    nb_downloads: int
    # Site searches (Actions.get nb_searches): a page whose URL carries a search parameter (q, s,
    # query, ...) is stored by Matomo as a search, not a page view (seen on Matomo 4.12.3), so
    # imported pages = nb_pageviews + nb_searches.
    nb_searches: int = 0

    @property
    def page_loads(self) -> int:
        return self.nb_pageviews + self.nb_searches


@dataclass(frozen=True)
class MetricCheck:
    expected: int  # imported according to the ledger
    actual: int  # reported by Matomo
    difference: int  # actual - expected: negative = missing in Matomo


@dataclass(frozen=True)
class Verdict:
    passed: bool
    description: str  # one line
    metrics: dict[str, MetricCheck]


def day_totals(api, idsite: int, day: str | dt.date) -> DayTotals:
    """Visits and actions (``VisitsSummary.get``), pageviews and downloads (``Actions.get``) of a day.

    Matomo answers ``[]`` for a day without data (or not archived yet): that reads as zeros.
    """
    day_text = day.isoformat() if isinstance(day, dt.date) else str(day).strip()
    try:
        dt.date.fromisoformat(day_text)
    except ValueError:
        raise ReportError(f"day must be YYYY-MM-DD, got {day!r}") from None
    visits = _report(api, "VisitsSummary.get", idsite, day_text)
    actions = _report(api, "Actions.get", idsite, day_text)
    return DayTotals(
        idsite=int(idsite), day=day_text,
        nb_visits=_count(visits, "nb_visits", "VisitsSummary.get"),
        nb_actions=_count(visits, "nb_actions", "VisitsSummary.get"),
        nb_pageviews=_count(actions, "nb_pageviews", "Actions.get"),
        nb_downloads=_count(actions, "nb_downloads", "Actions.get"),
        nb_searches=_count(actions, "nb_searches", "Actions.get"),
    )


def compare_with_ledger(reported: DayTotals, imported_pageviews: int, imported_downloads: int,
                        *, exact: bool) -> Verdict:
    """Do Matomo's totals account for the imported hits?

    ``exact=True``: the site receives imported hits only, so every metric must match.
    ``exact=False``: a JavaScript tracker also writes to the site, so Matomo may hold more but
    never less than what was imported.
    """
    expected = {"nb_pageviews": int(imported_pageviews), "nb_downloads": int(imported_downloads)}
    actual = {"nb_pageviews": reported.page_loads, "nb_downloads": reported.nb_downloads}
    metrics = {name: MetricCheck(expected[name], actual[name], actual[name] - expected[name]) for name in METRICS}
    where = f"site {reported.idsite} on {reported.day}"
    missing = {n: m for n, m in metrics.items() if m.difference < 0}
    extra = {n: m for n, m in metrics.items() if m.difference > 0}
    if missing:
        parts = ", ".join(f"{m.actual} of {m.expected} imported {_label(n)} ({-m.difference} missing)"
                          for n, m in missing.items())
        description = (f"Matomo reports {parts} for {where}: the day's reports were not (re)computed — "
                       f"re-run matomo_archive for {reported.day} (it invalidates the day and runs core:archive), "
                       "then check the archiver's output")
        return Verdict(False, description, metrics)
    if extra and exact:
        parts = ", ".join(f"{m.actual} {_label(n)} where {m.expected} were imported (+{m.difference})"
                          for n, m in extra.items())
        description = (f"Matomo reports {parts} for {where}: hits were counted twice or another tracker "
                       "writes to this site — look for duplicates, or compare with exact=False if a "
                       "JavaScript tracker shares the site")
        return Verdict(False, description, metrics)
    summary = ", ".join(f"{m.actual} {_label(n)}" for n, m in metrics.items())
    if extra:
        description = (f"Matomo holds every imported hit for {where} ({summary}; "
                       f"{', '.join(f'+{m.difference} {_label(n)}' for n, m in extra.items())} "
                       "from other tracking)")
    else:
        description = f"Matomo matches the ledger for {where} ({summary})"
    return Verdict(True, description, metrics)


def _report(api, method: str, idsite: int, day: str):
    try:
        return api.call(method, idSite=int(idsite), period="day", date=day)
    except MatomoApiError as exc:
        raise ReportError(f"cannot read Matomo's reports of site {idsite} for {day}: {exc}") from None


def _count(answer, key: str, method: str) -> int:
    if answer in ([], {}, None):  # Matomo's empty DataTable: no data for the day
        return 0
    if not isinstance(answer, dict):
        raise ReportError(f"{method}: unexpected answer shape ({type(answer).__name__}); expected an object or []")
    value = answer.get(key, 0)
    try:
        return int(float(value or 0))  # Matomo may render numbers as strings
    except (TypeError, ValueError):
        raise ReportError(f"{method}: {key} is not a number ({value!r})") from None


def _label(metric: str) -> str:
    return metric.removeprefix("nb_")


__all__ = ["DayTotals", "MetricCheck", "Verdict", "ReportError", "day_totals", "compare_with_ledger"]
