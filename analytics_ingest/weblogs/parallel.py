"""Use every core: parse, classify and render a file's lines in worker processes, in order.

One Python thread cannot both parse ~300,000 lines/s and render and send the tracked hits: the
GIL makes that one core's work. For big files of a stateless format (one line = one hit, no
header that changes later lines, which rules out W3C/IIS/CloudFront), the lines are cut into
jobs that worker processes turn into counted categories and rendered requests, already sorted
into lanes. The main process only merges counts and feeds the lane threads, in job order, so
the result is identical to the sequential scan.
"""

from __future__ import annotations

import collections
import gc
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import chain

from ..config import DEFAULT_PARALLEL_MIN_BYTES
from ..logs.detect import DETECT_LINES, detect_parser
from ..logs.formats import make_parser
from ..logs.reader import decode_part, part_line_count
from ..logs.scan import MAX_SAMPLES, ScanStats, _Counter, scan
from ..matomo.batches import join_requests
from ..matomo.pageview_ids import PageviewIds
from ..matomo.tracking import RequestBuilder
from ..site_time import local_day_of_minute
from ..vocabulary import DOWNLOADS
from .classify import Classifier
from .hit_store import HitColumns, write_part
from .lanes import LANE_CACHE_MAX, lane_of
from .ncsa_lines import run_lines

JOB_LINES = 10000
STATELESS = {"common", "combined", "common_vhost", "common_complete", "nginx_json", "elb", "alb", "regex"}
# Below this, starting processes costs more than it saves (ANALYTICS_INGEST_PARALLEL_MIN_BYTES).
MIN_PARALLEL_BYTES = DEFAULT_PARALLEL_MIN_BYTES


def worker_count() -> int:
    return max(1, min(2, (os.cpu_count() or 1)))


class _Chained:
    """A LogSource whose first chunk was already read (for the sequential fallback)."""

    def __init__(self, source, first: list[str], rest) -> None:
        self._source, self._first, self._rest = source, first, rest

    def __getattr__(self, name):
        return getattr(self._source, name)

    def chunks(self):
        if self._first:
            yield self._first
        yield from self._rest


# ---- in the worker process ------------------------------------------------------------------
_STATE: dict = {}


def init_worker(parent_pid: int) -> None:
    """Die with the importer: after a kill -9 of the parent nothing else would stop a worker
    (its siblings keep the job pipe open), and it would hold the terminal and memory forever.

    Ctrl-C reaches the whole process group: only the importer handles it (it stops, records what
    was delivered and says so in one line); a worker would print a traceback per process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()  # what the worker inherited from the importer: never garbage, never walked again
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass

    def watch() -> None:  # portable fallback
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)


def _setup(config: dict):
    key = config["key"]
    state = _STATE.get(key)
    if state is None:
        _STATE.clear()
        parser = make_parser(config["format_name"], [], regex=config["regex"], date_format=config["date_format"])
        stats = ScanStats()
        counter = _Counter(stats, Classifier(config["classify"]), None)
        builder = RequestBuilder(config["idsite"], config["main_url"], PageviewIds(config["identity"]),
                                 enable_bots=config["classify"].enable_bots)
        # visitor (user id or IP) -> lane, kept from job to job: a day's visitors come back
        state = _STATE[key] = (parser, counter, counter.stepper(parser), builder, {})
    return state


def _work(config: dict, parts: list, first_line_no: int):
    """One job in a worker: the lines of ``parts``, numbered from ``first_line_no``."""
    # Without the cycle collector: a job's objects form no cycles, and its tuples (match
    # groups, hit-store rows: a few per line) made it run some 20 times per job for nothing.
    # It runs again between jobs.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _job(config, parts, first_line_no)
    finally:
        if enabled:
            gc.enable()


def _job(config: dict, parts: list, first_line_no: int):
    parser, counter, step, builder, cache = _setup(config)
    if len(cache) > LANE_CACHE_MAX:
        cache.clear()
    text_lines = [line for part in parts for line in decode_part(part)]
    n_lanes = config["lanes"]
    delivered = config["delivered"]
    lines = [[] for _ in range(n_lanes)]
    days = [[] for _ in range(n_lanes)]
    requests = [[] for _ in range(n_lanes)]
    render = builder.render
    day_of_minute = local_day_of_minute(config["timezone"])
    # a job's cdts repeat (one string per second): each is mapped to its local day once
    days_by_cdt: dict[str, str] = {}
    day_known = days_by_cdt.get

    def new_day(cdt: str) -> str:
        day = days_by_cdt[cdt] = day_of_minute(cdt[:16])
        return day
    skipped = 0
    store_dir = config.get("hit_store")  # where this job writes its part of the file's hit store
    tracked = HitColumns() if store_dir else None  # every tracked hit, delivered before or not
    keep = tracked.on_tracked if tracked is not None else None
    add = tracked.add if tracked is not None else None
    render_fields = builder.render_fields

    def on_tracked(hit, category, is_bot):
        nonlocal skipped
        if keep is not None:
            keep(hit, category, is_bot)
        key = hit.user_id or hit.ip
        lane = cache.get(key)
        if lane is None:
            lane = cache[key] = lane_of(key, n_lanes)
        if hit.line_no <= delivered[lane]:
            skipped += 1
            return
        _pv_id, request = render(hit, category, is_bot)
        lines[lane].append(hit.line_no)
        days[lane].append(day_known(hit.cdt) or new_day(hit.cdt))  # one shared str per day: pickled once
        requests[lane].append(request)

    def track(line_no, host, path, ip, cdt, agent, referrer, user, length, status, category, is_bot):
        # on_tracked for a line of the fused NCSA loop: the same steps on the fields of a line
        # that has no Hit (an NCSA line has no events and no generation time).
        nonlocal skipped
        if add is not None:
            add((line_no, cdt, ip, agent, user, host, path, category is DOWNLOADS, is_bot, False))
        key = user or ip
        lane = cache.get(key)
        if lane is None:
            lane = cache[key] = lane_of(key, n_lanes)
        if line_no <= delivered[lane]:
            skipped += 1
            return
        _pv_id, request = render_fields(line_no, host, path, ip, cdt, agent, referrer, user, length, None, status,
                                        category, is_bot)
        lines[lane].append(line_no)
        days[lane].append(day_known(cdt) or new_day(cdt))
        requests[lane].append(request)

    stats = ScanStats()
    counter.stats = stats
    counter.on_tracked = on_tracked
    counter.line_no = first_line_no - 1
    fast_match = getattr(parser, "fast_match", None)  # NCSA formats only
    if fast_match is not None:
        run_lines(text_lines, first_line_no, fast_match=fast_match, counter=counter, step=step, track=track)
    else:
        counter.run(step, text_lines)
    counter.flush()
    lanes = []
    for lane in range(n_lanes):
        lanes.append((lines[lane], days[lane], *join_requests(requests[lane])))
    stored = None
    if tracked is not None:
        try:
            stored = write_part(store_dir, tracked)
        except OSError:
            stored = -1  # the store is a cache: the import goes on, the store is not published
    return stats, lanes, skipped, stored


# ---- in the main process --------------------------------------------------------------------
def _merge(total: ScanStats, part: ScanStats) -> None:
    total.lines_total += part.lines_total
    for key, value in part.counts.items():
        total.counts[key] = total.counts.get(key, 0) + value
    for attr in ("invalid_reasons", "utc_minutes", "filtered_reasons"):
        mine = getattr(total, attr)
        for key, value in getattr(part, attr).items():
            mine[key] = mine.get(key, 0) + value
    room = MAX_SAMPLES - len(total.invalid_samples)
    if room > 0:
        total.invalid_samples.extend(part.invalid_samples[:room])
    if part.first_cdt and (total.first_cdt is None or part.first_cdt < total.first_cdt):
        total.first_cdt = part.first_cdt
    if part.last_cdt and (total.last_cdt is None or part.last_cdt > total.last_cdt):
        total.last_cdt = part.last_cdt


def _jobs(parts, job_lines: int):
    """Group the reader's undecoded parts into jobs of about ``job_lines`` lines.

    Parts stay bytes: decoding happens in the workers, and a list of a few bytes objects
    pickles as a copy, where a list of 25,000 str would not.
    """
    pending, size = [], 0
    for part in parts:
        pending.append(part)
        size += part_line_count(part)
        if size >= job_lines:
            yield pending, size
            pending, size = [], 0
    if size:
        yield pending, size


def parallel_scan(source, *, config: dict, on_lane_items, on_skipped, pool: ProcessPoolExecutor,
                  fallback_on_tracked, on_store_part=None) -> ScanStats:
    """Like ``logs.scan``; tracked hits arrive as per-lane lists through ``on_lane_items``. With
    ``config["hit_store"]`` (a folder) each job also writes its hits there as a hit-store part and
    ``on_store_part`` hears what was written (-1: the part could not be written).

    Falls back to the sequential scan (calling ``fallback_on_tracked`` per hit) when the format
    is stateful or cannot be told from the first lines.
    """
    parts = source.raw_chunks()
    head_parts: list = []
    first: list[str] = []
    for part in parts:
        head_parts.append(part)
        first.extend(decode_part(part))
        if len(first) >= DETECT_LINES:
            break
    name = config["format_name"]
    if config["regex"]:
        name = "regex"
    elif name is None:
        parser = detect_parser(first[:DETECT_LINES])
        name = parser.name if parser is not None else None
    if name not in STATELESS:
        decoded = (decode_part(part) for part in parts)
        return scan(_Chained(source, first, decoded), format_name=config["format_name"], regex=config["regex"],
                    date_format=config["date_format"], options=config["classify"], on_tracked=fallback_on_tracked)
    config = {**config, "format_name": name}
    total = ScanStats(compression=source.compression, format_name=name)
    window: collections.deque = collections.deque()
    depth = 2 * pool._max_workers  # bounded: memory stays flat whatever the file size

    def settle_one():
        stats, lanes, skipped, stored = window.popleft().result()
        _merge(total, stats)
        if stored:
            on_store_part(stored)
        if skipped:
            on_skipped(skipped)
        on_lane_items(lanes)

    line_no = 1
    try:
        for job, n_lines in _jobs(chain(head_parts, parts), config.get("job_lines", JOB_LINES)):
            window.append(pool.submit(_work, config, job, line_no))
            line_no += n_lines
            if len(window) >= depth:
                settle_one()
        while window:
            settle_one()
    finally:
        for future in window:
            future.cancel()
        total.incomplete = bool(source.incomplete)
        total.incomplete_reason = source.incomplete_reason
    return total
