"""The unit of delivery: a batch of rendered tracking requests from one lane of one file.

A batch is kept in the shape it is sent in: the requests already joined into one JSON text
(``text``, requests separated by ``,``) with the end offset of each (``ends``), plus their line
numbers and site-local days. Building the bulk body is then one string concatenation, and a
batch crosses from a worker process as a few objects instead of one tuple per hit. The per-hit
view (``items``) is parsed back only when a batch must be settled by look-up, which is rare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import accumulate, count
from operator import add


def join_requests(requests: list[str]) -> tuple[str, list[int]]:
    """Requests as a batch holds them: ``(text, ends)``, the requests joined with ``,`` and the
    offset just after each (the lengths so far plus one comma per earlier request; C-level
    iterators: a worker does this for every hit)."""
    return ",".join(requests), list(map(add, accumulate(map(len, requests)), count()))


class Batch:
    __slots__ = ("lane", "lines", "text", "ends", "days", "recovery", "sent_at", "_items")

    def __init__(self, lane: int, lines: list[int], text: str, ends: list[int], days=None,
                 recovery: bool = False, items=None, sent_at: float | None = None) -> None:
        self.lane = lane
        self.lines = lines  # line numbers, ascending
        self.text = text  # '{...},{...},...'
        self.ends = ends  # ends[k]: offset just after request k in text
        self.days = days  # site-local day per hit (None: derive from cdt)
        self.recovery = recovery  # the batch that was in flight when an earlier run stopped
        # For a recovery batch: when it was last about to be sent (epoch seconds, from the
        # ledger). Matomo may still be committing it for a while after that (settling waits).
        self.sent_at = sent_at
        self._items = items

    @classmethod
    def from_items(cls, lane: int, items: list, recovery: bool = False, sent_at: float | None = None) -> "Batch":
        """From ``(line_no, pv_id, ip, cdt, request_json)`` tuples."""
        text, ends = join_requests([item[4] for item in items])
        return cls(lane, [item[0] for item in items], text, ends, None, recovery, list(items), sent_at)

    @property
    def items(self) -> list:
        """``(line_no, pv_id, ip, cdt, request_json)`` per hit, parsed from the text if needed."""
        if self._items is None:
            out, start = [], 0
            for line_no, end in zip(self.lines, self.ends):
                request = self.text[start:end]
                params = json.loads(request)
                out.append((line_no, params["pv_id"], params["cip"], params["cdt"], request))
                start = end + 1
            self._items = out
        return self._items

    @property
    def first_line(self) -> int:
        return self.lines[0]

    @property
    def last_line(self) -> int:
        return self.lines[-1]

    def __len__(self) -> int:
        return len(self.lines)

    def request_texts(self) -> list[str]:
        starts = [0] + [end + 1 for end in self.ends[:-1]]
        return [self.text[s:e] for s, e in zip(starts, self.ends)]

    def pv_ids(self) -> set[str]:
        return {item[1] for item in self.items}

    def without(self, present: set[str]) -> "Batch":
        """The same batch minus the hits Matomo already has."""
        kept = [it for it in self.items if it[1] not in present]
        batch = Batch.from_items(self.lane, kept, self.recovery, self.sent_at)
        if self.days is not None:
            day_of = dict(zip(self.lines, self.days))
            batch.days = [day_of[it[0]] for it in kept]
        return batch


class LaneBuffer:
    """Hits of one lane waiting to be cut into batches, as joined text (no per-hit objects)."""

    __slots__ = ("lines", "days", "text", "ends", "pos", "start")

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.days: list = []
        self.text = ""
        self.ends: list[int] = []
        self.pos = 0  # first hit not yet cut
        self.start = 0  # its offset in text

    def __len__(self) -> int:
        return len(self.lines) - self.pos

    def add(self, lines: list[int], days: list, text: str, ends: list[int]) -> None:
        if not lines:
            return
        if self.pos:  # drop what was cut, once per add (not per batch: that would be quadratic)
            self.lines, self.days = self.lines[self.pos:], self.days[self.pos:]
            self.ends = [e - self.start for e in self.ends[self.pos:]]
            self.text = self.text[self.start:]
            self.pos = self.start = 0
        if self.lines:
            offset = len(self.text) + 1
            self.text = self.text + "," + text
            self.ends.extend(e + offset for e in ends)
        else:
            self.text, self.ends = text, list(ends)
        self.lines.extend(lines)
        self.days.extend(days)

    def take(self, n: int, lane: int) -> Batch:
        """The next ``n`` hits (or fewer at the end) as a batch."""
        i, j = self.pos, min(self.pos + n, len(self.lines))
        start, stop = self.start, self.ends[j - 1]
        batch = Batch(lane, self.lines[i:j], self.text[start:stop], [e - start for e in self.ends[i:j]],
                      self.days[i:j])
        self.pos, self.start = j, stop + 1
        return batch


@dataclass
class Delivered:
    """What Matomo confirmed for one batch."""

    accepted: int = 0  # stored by Matomo (tracked), including hits found already present
    already_present: int = 0  # found by look-up, not sent again
    rejected_lines: list[int] = field(default_factory=list)  # Matomo's invalid_indices, as line numbers
