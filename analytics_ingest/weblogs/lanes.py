"""Lane workers: concurrent delivery that keeps each visitor's hits in order.

Hits are assigned to a lane by visitor (user id, else IP). Every lane is one thread that sends
its batches one at a time, so one visitor's hits reach Matomo in log order, whatever the number
of lanes. Matomo rebuilds visits from each visitor's own sequence of hits, so the reports do not
depend on how lanes interleave (see docs/exactly_once.md).

Before a batch is sent its last line is recorded as *in flight*; once Matomo confirms it, it is
recorded as delivered together with the next batch's in-flight line, in one ledger write. Each
write carries the lease's fencing token: a lane of an import that lost its lease writes nothing
and stops.
"""

from __future__ import annotations

import queue
import threading
import zlib

from ..errors import DeliveryError, IngestError
from ..matomo.batches import Batch
from ..site_time import local_day_of_minute

QUEUE_DEPTH = 4  # batches waiting per lane: bounded so memory stays flat
# Visitors whose lane a scan remembers (lane_of per hit costs an encode and a CRC): cleared when
# full, so memory stays flat (a few MB), whatever the number of visitors.
LANE_CACHE_MAX = 100_000


def lane_of(key: str, lanes: int) -> int:
    """Stable across runs and machines (unlike ``hash()``), so a resume rebuilds the same lanes."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % lanes


class DayGate:
    """Lets the first request of each site-local day finish before others of that day start.

    Matomo hashes a per-day fingerprint salt into every visitor's config id, and creates that
    salt on the first request of a day. Two concurrent bulk requests that both create it race:
    one overwrites the other's salt and visits of that day split (the reason
    ``import_logs.py --recorders=4`` gives different reports from run to run). Opening each day
    with one batch, alone, removes the race. A lane claims all the unopened days of its batch at
    once or none, so two lanes can never wait on each other.
    """

    def __init__(self, timezone: str = "UTC") -> None:
        self._cond = threading.Condition()
        self._open: set[str] = set()
        self._opening: set[str] = set()
        self._day_of_minute = local_day_of_minute(timezone)

    def days_of(self, batch: Batch) -> set[str]:
        if batch.days is not None:  # computed by the worker that rendered the hits
            return set(batch.days)
        return {self._day_of_minute(minute) for minute in {item[3][:16] for item in batch.items}}

    def enter(self, days: set[str], stop: threading.Event) -> set[str]:
        """Wait until no day of ``days`` is being opened by another lane; claim the unopened ones."""
        with self._cond:
            while True:
                if days & self._opening:
                    if stop.is_set():
                        return set()
                    self._cond.wait(0.2)
                    continue
                claimed = days - self._open
                self._opening |= claimed
                return claimed

    def leave(self, claimed: set[str], opened: bool) -> None:
        if not claimed:
            return
        with self._cond:
            self._opening -= claimed
            if opened:
                self._open |= claimed
            self._cond.notify_all()


class LaneWorker(threading.Thread):
    def __init__(self, lane: int, sink, ledger, file_id: int, stop: threading.Event, stats, gate: DayGate,
                 fence: tuple[str, int] | None = None) -> None:
        super().__init__(name=f"lane-{lane}", daemon=True)
        self.lane = lane
        self.sink = sink
        self.ledger = ledger
        self.file_id = file_id
        self.stop = stop
        self.stats = stats
        self.gate = gate
        self.fence = fence  # (lease owner, generation): checkpoint writes need it to be current
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.error: BaseException | None = None

    def run(self) -> None:
        confirmed_through: int | None = None  # delivered but not yet written to the ledger
        try:
            while True:
                batch = self.queue.get()
                if batch is None or self.stop.is_set():
                    break
                self.ledger.mark_in_flight(
                    self.file_id, self.lane, batch.last_line, delivered_through=confirmed_through, fence=self.fence
                )
                confirmed_through = None
                claimed = self.gate.enter(self.gate.days_of(batch), self.stop)
                try:
                    result = self.sink.deliver(batch)
                except BaseException:
                    self.gate.leave(claimed, opened=False)
                    raise
                self.gate.leave(claimed, opened=True)
                if result.rejected_lines:
                    self.ledger.add_rejected_lines(self.file_id, result.rejected_lines)
                self.stats.add(result)
                confirmed_through = batch.last_line
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            self.error = exc if isinstance(exc, IngestError) else DeliveryError(
                f"lane {self.lane} stopped: {type(exc).__name__}: {exc}"
            )
            self.stop.set()
        finally:
            if confirmed_through is not None:
                try:
                    self.ledger.mark_in_flight(self.file_id, self.lane, None, delivered_through=confirmed_through,
                                               fence=self.fence)
                except IngestError as exc:
                    if self.error is None:
                        self.error = exc
                    self.stop.set()
                except Exception as exc:  # noqa: BLE001
                    if self.error is None:
                        self.error = DeliveryError(f"cannot record progress in the ledger: {type(exc).__name__}")
                    self.stop.set()
            # Let a producer blocked on put() go on.
            while True:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    break

    def put(self, batch: Batch | None) -> bool:
        """Queue a batch; False if the import is stopping."""
        while True:
            if self.stop.is_set() and batch is not None:
                return False
            try:
                self.queue.put(batch, timeout=0.2)
                return True
            except queue.Full:
                if not self.is_alive():
                    return False


class DeliveryStats:
    """Totals over all lanes (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.already_present = 0
        self.rejected = 0

    def add(self, result) -> None:
        with self._lock:
            self.accepted += result.accepted
            self.already_present += result.already_present
            self.rejected += len(result.rejected_lines)
