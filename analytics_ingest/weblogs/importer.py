"""Import one access-log file into Matomo, exactly once.

The steps, each explained where it happens:
1. identify the file by its content (:mod:`analytics_ingest.weblogs.file_identity`): a renamed, rotated,
   recompressed or re-spelled file is the content the ledger already knows;
2. take the file's lease (with a fencing token) so no other import sends its hits at the same time;
3. stream it: read → parse → classify → render requests → lanes (:mod:`.feeding`) → Matomo (or the outbox);
4. skip what the ledger says was delivered, settle what was in flight when a run stopped;
5. record an import summary and the file's and day's status.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..errors import ConfigError, DeliveryError, IngestError, InputError, LeaseHeld, LeaseLost
from ..logs import open_log, scan
from ..logs.formats import JOURNAL_FORMAT_NAMES
from ..logs.probe import check_usable
from ..logs.reader import part_line_count
from ..matomo.pageview_ids import PageviewIds
from ..matomo.tracking import RequestBuilder
from ..owners import gone_local, new_owner
from ..site_writer import site_writer
from ..vocabulary import (
    DOWNLOADS,
    FILE_FAILED,
    FILE_LOADED,
    FILE_LOADING,
    FILE_PARTIAL,
    IGNORED_CATEGORIES,
    INVALID,
    KIND_JOURNAL,
    KIND_LOG,
    PAGES,
)
from . import file_identity, hit_store
from .classify import ClassifyOptions
from .feeding import LaneFeed, Stopped
from .parallel import JOB_LINES, MIN_PARALLEL_BYTES, init_worker, parallel_scan, worker_count

LEASE_TTL = 120.0  # seconds; renewed every LEASE_TTL / 4 while the import runs


@dataclass(frozen=True)
class ImportOptions:
    """What shapes the hits of a file: fixed at its first import (the file's *plan*)."""

    lanes: int = 4
    batch_size: int = 500
    format_name: str | None = None
    regex: str | None = None
    date_format: str | None = None
    classify: ClassifyOptions = field(default_factory=ClassifyOptions)

    def plan(self, identity: str) -> dict:
        return {
            "identity": identity,
            "lanes": self.lanes,
            "format_name": self.format_name,
            "regex": self.regex,
            "date_format": self.date_format,
            "classify": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.classify).items()},
        }


def options_from_plan(plan: dict, batch_size: int) -> ImportOptions:
    classify = {k: tuple(v) if isinstance(v, list) else v for k, v in plan["classify"].items()}
    return ImportOptions(
        lanes=int(plan["lanes"]),
        batch_size=batch_size,
        format_name=plan.get("format_name"),
        regex=plan.get("regex"),
        date_format=plan.get("date_format"),
        classify=ClassifyOptions(**classify),
    )


@dataclass
class ImportResult:
    path: str
    site_id: int
    status: str
    lines_total: int = 0
    tracked: int = 0
    ignored: dict = field(default_factory=lambda: dict.fromkeys(IGNORED_CATEGORIES, 0))
    invalid: int = 0
    invalid_reasons: dict = field(default_factory=dict)
    invalid_samples: list = field(default_factory=list)
    downloads: int = 0
    delivered: int = 0  # hits Matomo confirmed in this run (sent now or found already there)
    already_delivered: int = 0  # hits skipped because an earlier run delivered them
    already_present: int = 0  # hits of an interrupted batch that Matomo turned out to have
    rejected: int = 0  # hits Matomo refused (invalid_indices)
    seconds: float = 0.0
    format_name: str = ""
    compression: str = ""
    incomplete: bool = False
    days: dict = field(default_factory=dict)  # site-local day -> tracked hits (whole file, when read whole)
    message: str = ""
    sink: str = ""
    interrupted: bool = False  # stopped by Ctrl-C: what was read and delivered is still reported

    @property
    def lines_per_second(self) -> float:
        return self.lines_total / self.seconds if self.seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.status == FILE_LOADED and self.rejected == 0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["lines_per_second"] = round(self.lines_per_second, 1)
        data["invalid_samples"] = [list(s) for s in self.invalid_samples]
        return data


class _LeaseKeeper(threading.Thread):
    """Renews the file's lease while the import runs, and says when this process may no longer
    send: the lease was taken by another import, or could not be renewed for most of its TTL
    (the process was frozen, or the ledger unreachable) so another import may have taken it."""

    def __init__(self, ledger, file_id: int, owner: str, generation: int, ttl: float, stop: threading.Event) -> None:
        super().__init__(name="lease", daemon=True)
        self.ledger, self.file_id, self.owner, self.stop = ledger, file_id, owner, stop
        self.generation, self.ttl = generation, ttl
        self.done = threading.Event()
        self.lost = False
        self.renewed_at = time.monotonic()

    @property
    def fence(self) -> tuple[str, int]:
        return self.owner, self.generation

    def check(self) -> None:
        """Raise LeaseLost unless the lease is certainly still ours (called before every send)."""
        if self.lost or time.monotonic() - self.renewed_at > self.ttl * 0.75:
            self.lost = True
            self.stop.set()
            raise LeaseLost(
                "this import's lease on the file was not renewed in time (the process was paused or the "
                "ledger unreachable); stopped without sending more — rerun to resume"
            )

    def run(self) -> None:
        while not self.done.wait(self.ttl / 4):
            started = time.monotonic()
            try:
                ok = self.ledger.renew_lease(self.file_id, self.owner, self.ttl, self.generation)
            except Exception:  # noqa: BLE001 - a passing DB hiccup; the next renewal may work
                continue
            if not ok:
                self.lost = True
                self.stop.set()
                return
            self.renewed_at = started


class Importer:
    """Imports files of one site through one sink, recording everything in the ledger."""

    def __init__(self, ledger, sink, site, *, progress=None, lease_wait: float = 0.0, parallel: bool = True,
                 lease_ttl: float = LEASE_TTL, site_wait: float | None = None,
                 on_site_wait: Callable[[str], None] | None = None,
                 parallel_min_bytes: int = MIN_PARALLEL_BYTES, hit_store_dir: str | os.PathLike | None = None) -> None:
        self.ledger = ledger
        # Where each file's tracked hits are kept for the later stages (hit_store); None: not kept.
        self.hit_store_dir = hit_store_dir
        # How long to wait for another Matomo writer of the same site (None: as long as it takes).
        self.site_wait, self.on_site_wait = site_wait, on_site_wait
        self.lease_ttl = lease_ttl
        self.sink = sink
        self.site = site  # matomo.api.SiteInfo
        self.progress = progress
        self.lease_wait = lease_wait
        self.parallel = parallel
        # Files from this size on are parsed in worker processes (Settings.parallel_min_bytes).
        self.parallel_min_bytes = parallel_min_bytes
        self.job_lines = JOB_LINES
        self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "Importer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ensure_pool(self, path: str) -> None:
        """Start worker processes for a big file, before any thread of this import starts.

        Forking while other threads run could copy a lock another thread holds; here only
        this thread exists (lanes and lease keepers of earlier files have been joined).
        """
        if self._pool is not None or not self.parallel or worker_count() < 2:
            return
        try:
            if os.path.getsize(path) < self.parallel_min_bytes:
                return
        except OSError:
            return
        self._pool = ProcessPoolExecutor(
            max_workers=worker_count(),
            mp_context=multiprocessing.get_context("fork"),
            initializer=init_worker,
            initargs=(os.getpid(),),
        )
        # With "fork", the executor forks all its workers on the first submit: do it now,
        # while this is the only thread.
        self._pool.submit(int).result()

    # -- 1. identity -------------------------------------------------------------------------
    def _identify(self, path: str, format_name: str | None, force: bool) -> file_identity.Identified:
        kind = KIND_JOURNAL if format_name in JOURNAL_FORMAT_NAMES else KIND_LOG
        return file_identity.identify(self.ledger, self.site.idsite, path, kind=kind, force=force)

    def _compare(self, ident: file_identity.Identified):
        """Decide, under the lease, what this run does with the content: returns (record, note)."""
        ledger = self.ledger
        record = ledger.get_file_by_id(ident.record.id)
        content = ident.content
        if record.path != ident.path:
            ledger.update_file(record.id, path=ident.path)
        # Judge by the record as it is now, under the lease: another import may have delivered
        # this content meanwhile (whatever the relation was when we first looked).
        if file_identity.same_bytes(content, record) or content.size <= record.size:
            if record.status == FILE_LOADED:
                return record, "already imported"
            note = ("content differs from an imported file with the same first line: imported as another file "
                    "(--force)" if ident.relation == file_identity.CONFLICT else "")
            return ledger.get_file_by_id(record.id), note
        note = f"content grew from {record.size} to {content.size} bytes: importing the new lines"
        ledger.update_file(record.id, size=content.size, fingerprint=content.fingerprint,
                           fingerprint_len=content.covered, raw_size=content.raw_size, raw_digest=content.raw_digest)
        return ledger.get_file_by_id(record.id), note

    @staticmethod
    def check_usable(path: str, options: ImportOptions) -> tuple | None:
        """Refuse (InputError, one line) a file whose first lines mostly do not parse in the
        requested or detected format, as import_logs.py does; nothing is recorded for it.

        Returns the file as probed (:func:`_probe_stamp`, taken before the probe): give it to
        :meth:`import_file` as ``probed`` and the file is not probed again unless it changed."""
        stamp = _probe_stamp(path)
        check_usable(path, format_name=options.format_name, regex=options.regex, date_format=options.date_format,
                     classify=options.classify)
        return stamp

    # -- 2. lease ------------------------------------------------------------------------------
    def _acquire(self, file_id: int, path: str) -> tuple[str, int]:
        owner = new_owner()
        deadline = time.monotonic() + self.lease_wait
        while not (generation := self.ledger.acquire_lease(file_id, owner, self.lease_ttl)):
            holder = self.ledger.lease_holder(file_id)
            if holder and gone_local(holder[0]):
                # A killed import on this machine cannot renew; do not make the rerun wait
                # for its lease to expire. acquire_lease stays atomic if two reruns race here.
                self.ledger.release_lease(file_id, holder[0])
                continue
            if time.monotonic() >= deadline:
                holder = self.ledger.lease_holder(file_id)
                who = f"{holder[0]} (lease until {holder[1]:%H:%M:%S} UTC)" if holder else "another import"
                raise LeaseHeld(f"{path} is being imported by {who}; wait for it to finish or use --wait SECONDS")
            time.sleep(0.5)
        return owner, generation

    # -- the whole import -------------------------------------------------------------------
    def import_file(self, path: str, options: ImportOptions, *, force: bool = False,
                    probed: tuple | None = None) -> ImportResult:
        """Import ``path`` exactly once. ``probed``: what :meth:`check_usable` returned for it with
        these options (the CLI checks every file before it sends anything); a file that changed
        since (rotated, replaced, grown) is probed again."""
        ident = self._identify(path, options.format_name, force)
        path = ident.path
        record = ident.record
        if record.status == FILE_LOADED and ident.relation in (file_identity.SAME, file_identity.SHORTER):
            # Cheap exit without the lease for the common case of a rerun over loaded files.
            if record.path != path:
                self.ledger.update_file(record.id, path=path)  # where the content is now
            return self._already(path)
        if record.plan is None and record.kind == KIND_LOG and (probed is None or probed != _probe_stamp(path)):
            # Before anything is sent or planned, so a refused file stays importable. Journals are
            # our own files, filtered on purpose (other sites, not tracker requests): not probed.
            self.check_usable(path, options)
        self._ensure_pool(path)
        # One Matomo writer per site (Matomo's per-day salt race between two imports of a site).
        # The site's lock expires like the file's lease: a writer silent that long (frozen, cut off)
        # is presumed gone by both, and the file's fencing still stops it if it comes back.
        with site_writer(self.ledger, self.site.idsite, f"import of {os.path.basename(path)}",
                         wait=self.site_wait, on_wait=self.on_site_wait, ttl=self.lease_ttl):
            return self._import_leased(record, ident, path, options)

    def _import_leased(self, record, ident: file_identity.Identified, path: str,
                       options: ImportOptions) -> ImportResult:
        owner, generation = self._acquire(record.id, path)
        try:
            record, note = self._compare(ident)
        except BaseException:
            self.ledger.release_lease(record.id, owner)
            raise
        if note == "already imported":
            self.ledger.release_lease(record.id, owner)
            return self._already(path)
        started = dt.datetime.now(dt.timezone.utc)
        clock = time.perf_counter()
        stop = threading.Event()
        lease = _LeaseKeeper(self.ledger, record.id, owner, generation, self.lease_ttl, stop)
        lease.start()
        previous_status = record.status
        self.sink.guard = lease.check
        try:
            self.ledger.update_file(record.id, status=FILE_LOADING)
            result = self._run(record, path, options, stop, note, lease)
        except BaseException:
            # Nothing was recorded for this attempt; leave a resumable status, not "loading".
            if not lease.lost:
                self.ledger.update_file(
                    record.id, status=previous_status if previous_status != FILE_LOADING else FILE_PARTIAL)
            raise
        finally:
            self.sink.guard = None
            lease.done.set()
            lease.join()
            self.ledger.release_lease(record.id, owner)
        result.seconds = time.perf_counter() - clock
        if lease.lost:
            # Another import owns the file now: it records the file's status, not us.
            result.status = FILE_PARTIAL
            result.message = "; ".join(m for m in (result.message, "lease lost: another import took the file over")
                                       if m)
            self._record_attempt(record, result, started)
            return result
        self._record(record, result, started)
        return result

    def _already(self, path: str) -> ImportResult:
        return ImportResult(path=path, site_id=self.site.idsite, status=FILE_LOADED,
                            message="already imported: nothing sent", sink=self.sink.name)

    def _run(self, record, path: str, requested: ImportOptions, stop: threading.Event, note: str,
             lease: _LeaseKeeper) -> ImportResult:
        """Steps 3 and 4: stream the file into its lanes, resuming where the ledger says."""
        messages = [note] if note else []
        options, plan = self._plan(record, requested, messages)
        builder = RequestBuilder(self.site.idsite, self.site.main_url, PageviewIds(plan["identity"]),
                                 enable_bots=options.classify.enable_bots)
        feed = LaneFeed(lanes=options.lanes, batch_size=options.batch_size,
                        lane_states=self.ledger.lane_states(record.id), render=builder.render,
                        sink=self.sink, ledger=self.ledger, file_id=record.id, stop=stop, fence=lease.fence,
                        timezone=self.site.timezone)
        store = self._store_writer(record.id, plan)
        feed.start()
        error: BaseException | None = None
        stats_scan = None
        interrupted = False
        counted_lines = _Counted(None, self.progress)
        try:
            stats_scan = self._scan(path, record, plan, options, feed, counted_lines, store)
            self._publish_store(store, stats_scan)
            store = None
            feed.flush()
        except Stopped:
            pass
        except KeyboardInterrupt:
            # Ctrl-C: stop reading, let the lanes finish the batch each is sending (so the ledger
            # says exactly what was delivered), and report what was read and delivered.
            interrupted = True
            stop.set()
            if self._pool is not None:
                self.close()
        except (InputError, ConfigError):
            stop.set()  # bad regex or format: the caller shows one line; the lanes stop below
            raise
        except IngestError as exc:
            error = exc
            stop.set()
        finally:
            if store is not None:
                store.abort()
            feed.close()
        lane_errors = feed.errors
        if error is None and lane_errors:
            error = lane_errors[0]
        if any(isinstance(e, LeaseLost) for e in [error, *lane_errors]):
            lease.lost = True  # a fenced checkpoint write found the lease taken over
        return self._result(record, path, stats_scan, counted_lines, feed, messages, error, interrupted)

    def _plan(self, record, requested: ImportOptions, messages: list[str]) -> tuple[ImportOptions, dict]:
        """The file's plan: the one of its first import (a resume regenerates the same lanes and
        pv_ids), or the requested options, recorded now."""
        if record.plan:
            plan = json.loads(record.plan)
            options = options_from_plan(plan, requested.batch_size)
            shape = lambda o: (o.lanes, o.classify, o.format_name, o.regex)  # noqa: E731
            if shape(options) != shape(requested):
                messages.append("resumed with the lanes, format and filters of its first import")
            return options, plan
        plan = requested.plan(identity=f"{self.site.idsite}:{record.fingerprint}")
        self.ledger.update_file(record.id, plan=json.dumps(plan, sort_keys=True))
        return requested, plan

    def _store_writer(self, file_id: int, plan: dict) -> hit_store.HitStoreWriter | None:
        """The writer of this file's hit store (None when the importer keeps none). Keyed by the
        content and plan as the ledger now records them, which is what readers compare."""
        if self.hit_store_dir is None:
            return None
        record = self.ledger.get_file_by_id(file_id)
        try:
            return hit_store.HitStoreWriter(hit_store.store_path(self.hit_store_dir, file_id),
                                            hit_store.record_key(record))
        except OSError:
            return None  # no room for the cache: its first reader re-reads the log

    @staticmethod
    def _publish_store(store: hit_store.HitStoreWriter | None, stats_scan) -> None:
        """A store is the whole file's hits or nothing: published only after a scan that read the
        file to its end (whatever was delivered: it records the parse, not the delivery)."""
        if store is None:
            return
        if stats_scan.incomplete:
            store.abort()
            return
        try:
            store.commit()
        except OSError:
            store.abort()  # a store that cannot be written is rebuilt by its first reader

    def _scan(self, path: str, record, plan: dict, options: ImportOptions, feed: LaneFeed, counted_lines,
              store: hit_store.HitStoreWriter | None):
        """Read, parse and classify the file, feeding its tracked hits to the lanes (and to the
        file's hit store): in worker processes for a big file (:func:`parallel_scan`), else in this
        thread."""
        on_tracked = feed.on_tracked
        if store is not None:
            to_lanes, to_store = feed.on_tracked, store.on_tracked

            def on_tracked(hit, category, is_bot):
                to_store(hit, category, is_bot)
                to_lanes(hit, category, is_bot)

        with open_log(path) as source:
            counted = counted_lines.wrap(source)
            if self._pool is None:
                return scan(counted, format_name=options.format_name, regex=options.regex,
                            date_format=options.date_format, options=options.classify, on_tracked=on_tracked)
            config = {
                "key": (record.id, plan["identity"], feed.lanes, tuple(feed.delivered), time.monotonic()),
                "format_name": options.format_name, "regex": options.regex,
                "date_format": options.date_format, "classify": options.classify,
                "idsite": self.site.idsite, "main_url": self.site.main_url,
                "identity": plan["identity"], "lanes": feed.lanes, "delivered": feed.delivered,
                "job_lines": self.job_lines, "timezone": self.site.timezone,
                "hit_store": str(store.parts_dir) if store is not None else None,
            }
            return parallel_scan(counted, config=config, on_lane_items=feed.on_lane_items,
                                 on_skipped=feed.on_skipped, pool=self._pool, fallback_on_tracked=on_tracked,
                                 on_store_part=store.add_part if store is not None else None)

    def _result(self, record, path: str, stats_scan, counted_lines, feed: LaneFeed, messages: list[str],
                error: BaseException | None, interrupted: bool) -> ImportResult:
        """What this run read and delivered, and the file's status after it."""
        ledger = self.ledger
        result = ImportResult(path=path, site_id=self.site.idsite, status=FILE_LOADED, sink=self.sink.name)
        if stats_scan is None:
            result.lines_total = counted_lines.lines  # stopped early: at least say what was read
        if stats_scan is not None:
            counts = stats_scan.counts
            result.lines_total = stats_scan.lines_total
            result.tracked = counts[PAGES] + counts[DOWNLOADS]
            result.downloads = counts[DOWNLOADS]
            result.ignored = {k: counts[k] for k in IGNORED_CATEGORIES}
            result.invalid = counts[INVALID]
            result.invalid_reasons = dict(stats_scan.invalid_reasons)
            result.invalid_samples = list(stats_scan.invalid_samples)
            result.format_name = stats_scan.format_name
            result.compression = stats_scan.compression
            result.incomplete = stats_scan.incomplete
            result.days = stats_scan.local_days(self.site.timezone)
            if stats_scan.incomplete:
                messages.append(stats_scan.incomplete_reason or "file is incomplete")
        stats = feed.stats
        result.delivered = stats.accepted
        result.already_present = stats.already_present
        result.rejected = stats.rejected
        result.already_delivered = feed.skipped
        if result.already_present:
            messages.append(f"{result.already_present} hits of an interrupted batch were already in Matomo")
        if result.rejected:
            messages.append(f"Matomo rejected {result.rejected} hits as invalid (lines listed in the ledger)")
        if interrupted:
            result.interrupted = True
            any_delivered = any(d for d, _ in ledger.lanes(record.id).values())
            result.status = FILE_PARTIAL if any_delivered else FILE_FAILED
            messages.append("interrupted (Ctrl-C) after reading "
                            f"{result.lines_total} lines; delivered batches are recorded, rerun to resume")
        elif error is not None:
            any_delivered = any(d for d, _ in ledger.lanes(record.id).values())
            result.status = FILE_PARTIAL if any_delivered else FILE_FAILED
            messages.append(str(error))
        elif stats_scan is not None and stats_scan.incomplete:
            result.status = FILE_PARTIAL
        result.message = "; ".join(m for m in messages if m)
        return result

    # -- 5. record ---------------------------------------------------------------------------
    def _record(self, record, result: ImportResult, started: dt.datetime) -> None:
        """The file's status, the attempt's summary, the file's days and the days' statuses.

        A day is the site's local day (the importer's timezone, the sites file's for the
        Dagster layer). After a whole read the file's days are exact and replace the sampled
        ones discovery wrote; its ``day`` (the day it is named for, which its own expected count
        is met by) is kept, or set to the day most of its hits fall on."""
        ledger = self.ledger
        days = {dt.date.fromisoformat(d): n for d, n in result.days.items()}
        before = set(ledger.file_days(record.id))
        fields = {"status": result.status}
        if record.day is None and days:
            fields["day"] = max(sorted(days), key=lambda d: days[d])
        ledger.update_file(record.id, **fields)
        if days and not result.interrupted:
            ledger.set_file_days(record.id, days)
        self._record_attempt(record, result, started)
        touched = set(days) | before
        if fields.get("day") or record.day:
            touched.add(fields.get("day") or record.day)
        # New hits in a day that already had its pretable or metrics make those stale: the day
        # steps back to what its files say (loaded/partial), so the later stages run again.
        step_back = result.delivered > 0
        for day in sorted(touched):
            ledger.recompute_day_status(self.site.idsite, day, force=step_back)

    def _record_attempt(self, record, result: ImportResult, started: dt.datetime) -> None:
        """The attempt's summary row (SciELO's control_log_file_summary)."""
        ignored = result.ignored
        self.ledger.add_summary(
            record.id,
            {
                "started_at": started,
                "finished_at": dt.datetime.now(dt.timezone.utc),
                "status": result.status,
                "lines_total": result.lines_total,
                "tracked": result.tracked,
                "pages": result.tracked - result.downloads,
                "downloads": result.downloads,
                **{k: ignored.get(k, 0) for k in IGNORED_CATEGORIES},
                "invalid": result.invalid,
                "delivered": result.delivered,
                "rejected": result.rejected,
                "seconds": result.seconds,
                "format_name": result.format_name,
                "compression": result.compression,
                "incomplete": result.incomplete,
                "message": result.message[:500],
            },
        )


def _probe_stamp(path: str) -> tuple | None:
    """Which file ``path`` is and how it was when probed: device, inode, size and modification
    time (None if it cannot be read: then it is probed again, and fails there in one line)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Counted:
    """A LogSource that counts the lines read (and reports them to a progress display), once per
    chunk: what a stopped import says it read."""

    def __init__(self, source, progress) -> None:
        self._source = source
        self._progress = progress
        self.lines = 0

    def wrap(self, source) -> "_Counted":
        self._source = source
        return self

    def __getattr__(self, name):
        return getattr(self._source, name)

    def chunks(self):
        progress = self._progress
        for chunk in self._source.chunks():
            self.lines += len(chunk)
            if progress is not None:
                progress.advance(len(chunk), self._source)
            yield chunk

    def raw_chunks(self):
        progress = self._progress
        for part in self._source.raw_chunks():
            n = part_line_count(part)
            self.lines += n
            if progress is not None:
                progress.advance(n, self._source)
            yield part


__all__ = ["Importer", "ImportOptions", "ImportResult", "DeliveryError"]
