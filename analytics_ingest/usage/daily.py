"""One site-local day of hits → the small usage aggregate every window report is built from.

One pass over the day's delivered hits (:class:`analytics_ingest.weblogs.day_hits.DayHits`, as
columns) collects:

* page views, downloads and events (a hit carrying an event category is a Matomo event, not a
  page view) and the tracked hits flagged as bots (``enable_bots``);
* visitors: the user id when the log has one, else IP + user agent (Matomo's fallback
  fingerprint without a visitor cookie), stored only as salted 64-bit hashes;
* sessions, Matomo's way: a visitor's hits with no gap over 30 minutes form one visit, and a
  visit ends at local midnight (Matomo's default), so day session counts add up across a window;
* hits per page and per download (host + path, query string dropped: it may hold tokens);
* lines the importer ignored (bots, static, errors, redirects, filtered, invalid), from the
  ledger's import summaries, which are per *file*: a file feeding one day gives its counts to
  that day exactly; a file spanning midnight shares them out in proportion to its hits per day
  (the ledger's file days), by largest remainder so the days of a file add up to the file.

The aggregate records the ledger's last delivery for the day: :func:`is_stale` tells when a later
import added hits and the aggregate must be rebuilt. Rebuilding a day just replaces its file; the
first-seen index notices (see :mod:`.first_seen`).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..columns import per_value
from ..vocabulary import FILE_INVALID, FILE_LOADED, IGNORED_CATEGORIES, INVALID
from ..weblogs.day_hits import DayHits, hit_store_dir
from .store import day_path, read_day_meta, salt_id, site_salt, visitor_id, write_day

SESSION_GAP_SECONDS = 30 * 60  # Matomo's default visit length (visit_standard_length)
USAGE_COLUMNS = ("time", "ip", "user_agent", "user_id", "host", "path", "download", "bot", "event")


def _page_key(key: str) -> tuple[str]:
    """``host\npath`` -> the page's key: host + path, query string and fragment dropped."""
    host, _, path = key.partition("\n")
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    return (f"{host}{path}" if host else path,)


def _visits(vids: np.ndarray, times: np.ndarray) -> dict[int, tuple[int, int]]:
    """visitor id -> (hits, sessions): a session ends after more than 30 minutes without a hit
    (files and lanes need not be in time order, so each visitor's hits are sorted first)."""
    if not len(vids):
        return {}
    order = np.lexsort((times, vids))
    vids, times = vids[order], times[order]
    starts = np.ones(len(vids), dtype=bool)  # does a hit open a session?
    starts[1:] = (vids[1:] != vids[:-1]) | (times[1:] - times[:-1] > SESSION_GAP_SECONDS)
    ids, first, hits = np.unique(vids, return_index=True, return_counts=True)
    sessions = np.add.reduceat(starts.astype(np.int64), first)
    return dict(zip(ids.tolist(), zip(hits.tolist(), sessions.tolist())))


def _add_counts(target: dict, keys, rows) -> None:
    """Add how often each key occurs among ``rows`` (a mask) to ``target``."""
    import pyarrow.compute as pc

    for entry in pc.value_counts(keys.filter(rows)).to_pylist():
        target[entry["values"]] += entry["counts"]


def _share(total: int, weights: dict[dt.date, int], day: dt.date) -> int:
    """``day``'s part of ``total`` split in proportion to ``weights`` (largest remainder, ties to
    the earlier day), so the parts of all days add up to ``total``."""
    if day not in weights:
        return 0
    whole = sum(weights.values())
    if whole <= 0:
        return total if day == min(weights) else 0
    parts = {d: total * w // whole for d, w in weights.items()}
    left = total - sum(parts.values())
    order = sorted(weights, key=lambda d: (-(total * weights[d] % whole), d))
    for d in order[:left]:
        parts[d] += 1
    return parts[day]


def _ignored_for_day(ledger, site, day: dt.date) -> tuple[dict[str, int], dict]:
    """Ignored and invalid lines attributed to ``day`` from the import summaries of its files."""
    totals = dict.fromkeys((*IGNORED_CATEGORIES, INVALID), 0)
    how = {"files": 0, "shared_files": 0, "files_without_summary": 0}
    for record in ledger.files_feeding_day(site.id, day):
        if record.status == FILE_INVALID:
            continue
        summaries = [s for s in ledger.summaries(record.id) if s.get("lines_total") is not None]
        loaded = [s for s in summaries if s.get("status") == FILE_LOADED]
        summary = (loaded or summaries or [None])[-1]  # each attempt scans the whole file: take the last
        if summary is None:
            how["files_without_summary"] += 1
            continue
        how["files"] += 1
        weights = ledger.file_days(record.id)
        if len(weights) > 1:
            how["shared_files"] += 1
        elif not weights:
            weights = {day: 1}
        for category in totals:
            totals[category] += _share(int(summary.get(category) or 0), weights, day)
    return totals, how


def build_day_aggregate(settings, ledger, site, day: dt.date) -> Path:
    """Read the day's hits once and write ``<home>/usage/<site_key>/<day>.parquet``; return it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    started = time.monotonic()
    salt = site_salt(settings, site)
    last_delivery = ledger.last_delivery(site.id, day)  # read first: a later delivery makes us stale
    vid_cache: dict = {}  # visitor key → hashed id (hash each visitor once)
    page_cache: dict = {}
    vid_parts, time_parts = [], []
    pages: dict[str, int] = defaultdict(int)
    downloads: dict[str, int] = defaultdict(int)
    counts = {"pageviews": 0, "downloads": 0, "events": 0, "bots_tracked": 0}
    day_hits = DayHits(hit_store_dir(settings), ledger, site, day)
    for _record, hits in day_hits.tables(columns=USAGE_COLUMNS):
        user_id = hits.column("user_id").cast(pa.string())
        # The user id when the log has one, else IP + user agent (Matomo's fingerprint without a cookie).
        keys = pc.if_else(pc.not_equal(user_id, ""), pc.binary_join_element_wise("u", user_id, "\0"),
                          pc.binary_join_element_wise("a", hits.column("ip").cast(pa.string()),
                                                      hits.column("user_agent").cast(pa.string()), "\0"))
        (vids,) = per_value(keys, lambda key: (visitor_id(salt, key),), [pa.int64()], vid_cache)
        vid_parts.append(vids.to_numpy())
        time_parts.append(hits.column("time").cast(pa.int64()).to_numpy())
        download = hits.column("download")
        event = pc.and_(hits.column("event"), pc.invert(download))
        pageview = pc.invert(pc.or_(download, event))
        page_keys = pc.binary_join_element_wise(hits.column("host").cast(pa.string()),
                                                hits.column("path").cast(pa.string()), "\n")
        (page_keys,) = per_value(page_keys, _page_key, [pa.string()], page_cache)
        _add_counts(downloads, page_keys, download)
        _add_counts(pages, page_keys, pageview)
        counts["downloads"] += pc.sum(download).as_py() or 0
        counts["events"] += pc.sum(event).as_py() or 0
        counts["pageviews"] += pc.sum(pageview).as_py() or 0
        counts["bots_tracked"] += pc.sum(hits.column("bot")).as_py() or 0
    stats = day_hits.stats
    vid_cache.clear()
    visitors = _visits(np.concatenate(vid_parts) if vid_parts else np.empty(0, np.int64),
                       np.concatenate(time_parts) if time_parts else np.empty(0, np.int64))
    ignored, attribution = _ignored_for_day(ledger, site, day)
    counts.update(
        visitors=len(visitors),
        sessions=sum(s for _, s in visitors.values()),
        hits=sum(stats.hits.values()),
        rejected_skipped=stats.rejected_skipped,
        **{f"ignored_{k}": v for k, v in ignored.items()},
    )
    meta = {
        "site_id": site.id,
        "site_key": site.key,
        "day": day.isoformat(),
        "timezone": site.timezone,
        "salt_id": salt_id(salt),
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "last_delivery": last_delivery.isoformat() if last_delivery else None,
        "day_status": ledger.day_status(site.id, day),
        "files": len(stats.files),
        "missing_files": len(stats.missing_files),
        "ignored_attribution": attribution,
        "session_rule": "visitor + 30 min inactivity, split at local midnight",
        "seconds": round(time.monotonic() - started, 3),
        "counts": counts,
    }
    return write_day(day_path(settings, site, day), meta, visitors, dict(pages), dict(downloads))


def is_stale(ledger, site, day: dt.date, path: Path) -> bool:
    """True when ``path`` is missing, unreadable, or older than the day's last delivery."""
    try:
        meta = read_day_meta(path)
    except Exception:  # noqa: BLE001 - any unreadable aggregate is simply rebuilt
        return True
    last = ledger.last_delivery(site.id, day)
    if last is None:
        return False
    built_through = meta.get("last_delivery")
    return built_through is None or dt.datetime.fromisoformat(built_through) < last


def ensure_day_aggregates(settings, ledger, site, days) -> dict[str, list[dt.date]]:
    """Build the aggregates of ``days`` that are missing or stale, for days the ledger has files
    for (a day without files stays missing: no data is not zero). Returns what happened."""
    done: dict[str, list[dt.date]] = {"built": [], "rebuilt": [], "no_files": []}
    for day in days:
        path = day_path(settings, site, day)
        exists = path.exists()
        if exists and not is_stale(ledger, site, day, path):
            continue
        if not ledger.files_feeding_day(site.id, day):
            done["no_files"].append(day)
            continue
        build_day_aggregate(settings, ledger, site, day)
        done["rebuilt" if exists else "built"].append(day)
    return done


__all__ = ["SESSION_GAP_SECONDS", "build_day_aggregate", "ensure_day_aggregates", "is_stale"]
