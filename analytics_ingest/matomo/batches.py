"""The unit of delivery: a batch of rendered tracking requests from one lane of one file."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Batch:
    """Hits of one lane, in line order. ``items`` are ``(line_no, pv_id, ip, cdt, request_json)``."""

    lane: int
    items: list = field(default_factory=list)
    recovery: bool = False  # the batch that was in flight when an earlier run stopped

    @property
    def first_line(self) -> int:
        return self.items[0][0]

    @property
    def last_line(self) -> int:
        return self.items[-1][0]

    def __len__(self) -> int:
        return len(self.items)

    def pv_ids(self) -> set[str]:
        return {item[1] for item in self.items}

    def without(self, present: set[str]) -> "Batch":
        """The same batch minus the hits Matomo already has."""
        return Batch(self.lane, [it for it in self.items if it[1] not in present], self.recovery)


@dataclass
class Delivered:
    """What Matomo confirmed for one batch."""

    accepted: int = 0  # stored by Matomo (tracked), including hits found already present
    already_present: int = 0  # found by look-up, not sent again
    rejected_lines: list[int] = field(default_factory=list)  # Matomo's invalid_indices, as line numbers
