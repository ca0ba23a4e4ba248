"""Replay fetched events into Matomo through the engine's exactly-once import.

The importer delivers every line of a file exactly once, keyed by (file identity, line number),
and resumes a file that grew by appending. So each site-day gets an **append-only journal**,
``<home>/cloudwatch/<site_key>/<day>.replay.jsonl``: one raw nginx JSON line per tracker request.
A replay appends the requests the journal does not hold yet — earlier lines are never
rewritten, so their line numbers, and the ``pv_id`` derived from them, stay the same — and
then imports the journal with the ``matomo_replay`` format. Rerunning with the same or
overlapping events appends nothing new and sends nothing twice.

A journal line is identified by its text (SHA-256 of the message), not by the CloudWatch event
id: the same request shipped twice to CloudWatch (an agent retry) is one request and is sent
once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..logs.replay import REPLAY, load_access_line, tracker_params
from ..weblogs.importer import ImportOptions, ImportResult
from .events import CloudEvent
from .store import _locked, check_site_key, day_text
from .window import local_day

JOURNAL_SUFFIX = ".replay.jsonl"
OTHER_SITE = "other_site"  # invalid reason: a tracker request for another idsite
MULTILINE = "multiline"  # invalid reason: a message that would not stay one journal line


def journal_path(home, site_key: str, day) -> Path:
    return Path(home) / "cloudwatch" / check_site_key(site_key) / f"{day_text(day)}{JOURNAL_SUFFIX}"


def line_key(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8", "surrogatepass")).hexdigest()


def _journal_keys(path: Path) -> tuple[set[str], bool]:
    """Keys of the journal's lines, and whether its last line is complete (ends with a newline)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set(), True
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    complete = text.endswith("\n") or not text
    if not complete:
        lines = lines[:-1]  # a torn append: that event is appended again, whole
    return {line_key(line) for line in lines if line}, complete


@dataclass
class AppendResult:
    appended: int = 0
    already_present: int = 0
    invalid: dict[str, int] = field(default_factory=dict)


def append_new_events(path, events: Iterable[CloudEvent], *, site_id: int | None = None) -> AppendResult:
    """Append the events whose line is not in the journal yet, in time order; never rewrite.

    With ``site_id``, tracker requests for another idsite are not journaled (counted invalid
    ``other_site``): a journal only ever holds its own site's requests. A torn last line (a
    crash mid-append) is closed with a newline and stays an invalid line; its event is
    appended again whole. One write, flushed and fsynced, under a lock file.
    """
    path = Path(path)
    with _locked(_lock_path(path)):
        return _append(path, events, site_id)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _append(path: Path, events: Iterable[CloudEvent], site_id: int | None) -> AppendResult:
    """:func:`append_new_events` for a caller holding the journal's lock."""
    result = AppendResult()
    keys, complete = _journal_keys(path)
    new_lines: list[str] = []
    for event in sorted(events, key=lambda e: (e.timestamp, e.id)):
        line = event.message.strip()
        if "\n" in line or "\r" in line:
            result.invalid[MULTILINE] = result.invalid.get(MULTILINE, 0) + 1
            continue
        if site_id is not None and _other_site(line, site_id):
            result.invalid[OTHER_SITE] = result.invalid.get(OTHER_SITE, 0) + 1
            continue
        key = line_key(line)
        if key in keys:
            result.already_present += 1
            continue
        keys.add(key)
        new_lines.append(line)
    if new_lines:
        data = ("" if complete else "\n") + "".join(line + "\n" for line in new_lines)
        with open(path, "ab") as handle:
            handle.write(data.encode("utf-8", "surrogatepass"))
            handle.flush()
            os.fsync(handle.fileno())
    result.appended = len(new_lines)
    return result


def _other_site(line: str, site_id: int) -> bool:
    obj = load_access_line(line)
    if obj is None:
        return False  # not JSON: the importer counts it invalid
    path = obj.get("path") or obj.get("request_uri")
    params = tracker_params(path) if isinstance(path, str) else None
    return params is not None and params.get("idsite", "").strip() != str(int(site_id))


def events_by_day(events: Iterable[CloudEvent], tz="UTC") -> dict[dt.date, list[CloudEvent]]:
    """Events grouped by the site-local day of their CloudWatch timestamp."""
    out: dict[dt.date, list[CloudEvent]] = {}
    for event in events:
        out.setdefault(local_day(event.timestamp, tz), []).append(event)
    return out


@dataclass
class ReplayResult:
    journal: str
    appended: int  # new journal lines this run
    already_present: int  # events already in the journal (sent by an earlier run, or being sent)
    delivered: int  # hits Matomo confirmed in this run
    invalid: int  # events not journaled (other site, multi-line) + invalid journal lines
    invalid_reasons: dict = field(default_factory=dict)
    status: str = ""  # the journal's import status (loaded, partial, failed)
    message: str = ""
    import_result: ImportResult | None = None

    def as_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "import_result"}
        data["import"] = self.import_result.as_dict() if self.import_result is not None else None
        return data


def replay_day(settings, ledger, site, day, events: Iterable[CloudEvent], *, policy=None,
               format_name: str = REPLAY, batch_size: int | None = None, lease_wait: float = 0.0) -> ReplayResult:
    """Append the site-day's new events to its journal and import the journal exactly once.

    ``site`` needs ``id`` and ``key`` (a :class:`analytics_ingest.sites.SiteConfig`; ``lanes``
    and ``batch_size`` are used when present). ``format_name`` may be ``matomo_replay_xff`` to
    take the client IP from ``http_x_forwarded_for``; like every import option it is fixed at
    the journal's first import.
    """
    from ..engine import make_importer

    path = journal_path(settings.home, site.key, day)
    options = ImportOptions(
        lanes=int(getattr(site, "lanes", 4) or 4),
        batch_size=int(batch_size or getattr(site, "batch_size", 500) or 500),
        format_name=format_name,
    )
    # One lock over append + import: a replay of the same site-day in another process waits
    # instead of reading a half-appended journal (harmless for exactly-once, but noisy).
    with _locked(_lock_path(path)):
        appended = _append(path, events, site.id)
        reasons = dict(appended.invalid)
        if not path.exists():  # nothing ever journaled for this day
            return ReplayResult(str(path), 0, appended.already_present, 0, sum(reasons.values()), reasons,
                                message="no events to replay")
        # In-process parsing: a journal is small; worker processes would cost more than they save.
        with make_importer(settings, ledger, site.id, policy=policy, lease_wait=lease_wait,
                           parallel=False, timezone=site.timezone) as importer:
            result = importer.import_file(str(path), options)
    for reason, n in result.invalid_reasons.items():
        reasons[reason] = reasons.get(reason, 0) + n
    return ReplayResult(
        journal=str(path),
        appended=appended.appended,
        already_present=appended.already_present,
        delivered=result.delivered,
        invalid=sum(reasons.values()),
        invalid_reasons=reasons,
        status=result.status,
        message=result.message,
        import_result=result,
    )


__all__ = ["AppendResult", "JOURNAL_SUFFIX", "ReplayResult", "append_new_events", "events_by_day",
           "journal_path", "line_key", "replay_day"]
