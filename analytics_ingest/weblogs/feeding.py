"""Feeding one import's lanes: tracked hits → per-visitor lanes → batches, resumed where the
ledger says.

Each hit goes to its visitor's lane (:func:`~analytics_ingest.weblogs.lanes.lane_of`). Per lane,
what the ledger records as delivered is skipped, what was in flight when a run stopped is
gathered into one *recovery* batch (settled by look-up before anything newer is sent), and the
rest is cut into batches of ``batch_size`` for that lane's :class:`LaneWorker`. The workers share
one :class:`DayGate`, so the first batch of each site-local day goes alone.

Hits arrive one at a time from the sequential scan (:attr:`LaneFeed.on_tracked`, per line: a
closure, kept free of attribute look-ups) or as per-lane runs of rendered requests from the
worker processes (:meth:`LaneFeed.on_lane_items`, per job).
"""

from __future__ import annotations

import bisect
import threading

from ..matomo.batches import Batch, LaneBuffer
from .lanes import LANE_CACHE_MAX, DayGate, DeliveryStats, LaneWorker, lane_of


class Stopped(Exception):
    """A lane stopped (error or lost lease): stop reading."""


def _put(worker: LaneWorker, batch: Batch, stop: threading.Event) -> None:
    if not worker.put(batch):
        raise Stopped()


class LaneFeed:
    """The lanes of one import: their worker threads, their day gate and what feeds them.

    ``lane_states`` is the ledger's checkpoint per lane (:meth:`Ledger.lane_states`); ``render``
    turns a hit into ``(pv_id, request text)``. Use: :meth:`start`, feed through
    :attr:`on_tracked` / :meth:`on_lane_items` / :meth:`on_skipped`, then :meth:`flush` (the
    last, partial batches) and always :meth:`close` (ends and joins the workers)."""

    def __init__(self, *, lanes: int, batch_size: int, lane_states: dict, render, sink, ledger, file_id: int,
                 stop: threading.Event, fence: tuple[str, int], timezone: str) -> None:
        self.lanes, self.batch_size, self.stop = lanes, batch_size, stop
        known = [lane_states.get(i, (0, None, None)) for i in range(lanes)]
        self.delivered = [done or 0 for done, _flight, _at in known]
        self.in_flight = [flight or 0 for _done, flight, _at in known]
        # When each in-flight batch was about to be sent: Matomo may still be committing it.
        self.flight_sent = [at.timestamp() if at else None for _done, _flight, at in known]
        self.stats = DeliveryStats()
        gate = DayGate(timezone)
        self.workers = [LaneWorker(i, sink, ledger, file_id, stop, self.stats, gate, fence=fence)
                        for i in range(lanes)]
        self._buffers: list[list] = [[] for _ in range(lanes)]  # sequential path: items per lane
        self._lane_buffers = [LaneBuffer() for _ in range(lanes)]  # parallel path: rendered runs per lane
        self._recovery: list[list] = [[] for _ in range(lanes)]  # the in-flight batch, re-gathered
        self._skipped = [0]
        self.on_tracked = self._tracked_callback(render)

    @property
    def skipped(self) -> int:
        """Hits not sent because an earlier run delivered them."""
        return self._skipped[0]

    @property
    def errors(self) -> list[BaseException]:
        return [w.error for w in self.workers if w.error is not None]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def _send_recovery(self, lane: int) -> None:
        _put(self.workers[lane], Batch.from_items(lane, self._recovery[lane], recovery=True,
                                                  sent_at=self.flight_sent[lane]), self.stop)
        self._recovery[lane] = []

    def _tracked_callback(self, render):
        """``on_tracked(hit, category, is_bot)`` for the sequential scan: runs once per tracked line,
        so everything it touches is a local of this closure."""
        n_lanes, batch_size, stop = self.lanes, self.batch_size, self.stop
        delivered, in_flight, workers = self.delivered, self.in_flight, self.workers
        buffers, recovery, skipped = self._buffers, self._recovery, self._skipped
        send_recovery = self._send_recovery
        lane_cache: dict[str, int] = {}
        cache_max = LANE_CACHE_MAX

        def on_tracked(hit, category, is_bot):
            key = hit.user_id or hit.ip
            lane = lane_cache.get(key)
            if lane is None:
                lane = lane_of(key, n_lanes)
                if len(lane_cache) > cache_max:
                    lane_cache.clear()
                lane_cache[key] = lane
            line_no = hit.line_no
            if line_no <= delivered[lane]:
                skipped[0] += 1
                return
            pv_id, request = render(hit, category, is_bot)
            item = (line_no, pv_id, hit.ip, hit.cdt, request)
            if line_no <= in_flight[lane]:
                recovery[lane].append(item)
                if line_no == in_flight[lane]:
                    send_recovery(lane)
                return
            buf = buffers[lane]
            buf.append(item)
            if len(buf) >= batch_size:
                _put(workers[lane], Batch.from_items(lane, buf), stop)
                buffers[lane] = []

        return on_tracked

    def on_lane_items(self, lane_results) -> None:
        """The parallel path's ``on_tracked``: one job's hits per lane at a time, as (line numbers,
        days, joined request text, end offsets); the worker already left out delivered lines."""
        recovery, batch_size = self._recovery, self.batch_size
        for lane, (lines, days, text, ends) in enumerate(lane_results):
            if not lines:
                continue
            last_in_flight = self.in_flight[lane]
            if last_in_flight and lines[0] <= last_in_flight:
                cut = bisect.bisect_right(lines, last_in_flight)
                head = Batch(lane, lines[:cut], text[: ends[cut - 1]], ends[:cut])
                recovery[lane].extend(head.items)
                if recovery[lane][-1][0] == last_in_flight:
                    self._send_recovery(lane)
                start = ends[cut - 1] + 1 if cut else 0
                lines, days, text = lines[cut:], days[cut:], text[start:]
                ends = [e - start for e in ends[cut:]]
            buffer = self._lane_buffers[lane]
            buffer.add(lines, days, text, ends)
            while len(buffer) >= batch_size:
                _put(self.workers[lane], buffer.take(batch_size, lane), self.stop)

    def on_skipped(self, n: int) -> None:
        self._skipped[0] += n

    def flush(self) -> None:
        """After the whole file: queue what is left of each lane (raises :class:`Stopped`)."""
        for lane in range(self.lanes):
            if self._recovery[lane]:  # the in-flight line was not reached (a shorter copy of the content)
                self._send_recovery(lane)
            if self._buffers[lane]:
                _put(self.workers[lane], Batch.from_items(lane, self._buffers[lane]), self.stop)
            if len(self._lane_buffers[lane]):
                _put(self.workers[lane], self._lane_buffers[lane].take(len(self._lane_buffers[lane]), lane),
                     self.stop)

    def close(self) -> None:
        """Tell every worker the feed has ended and wait for each to finish its batches."""
        for worker in self.workers:
            worker.put(None)
        for worker in self.workers:
            worker.join()
