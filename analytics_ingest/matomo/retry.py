"""How long to keep trying when Matomo does not take a batch."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8  # failed attempts per batch before the import stops (progress is kept)
    base_delay: float = 1.0  # seconds; doubles per attempt, with full jitter
    max_delay: float = 60.0
    # Matomo's maintenance mode (record_statistics = 0) answers 503. That is a pause, not a
    # failure: wait this long in total before stopping, with progress kept.
    maintenance_max_wait: float = 3600.0
    maintenance_delay: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    # A batch in doubt (timeout, reset, 500, a crash mid-request) may still be committing inside
    # Matomo after the client gave up or died: PHP finishes a bulk request whatever happens to
    # the connection. It is looked up no earlier than settle_wait seconds after it was sent, then
    # again after settle_interval until two look-ups agree (docs/exactly_once.md).
    settle_wait: float = 60.0
    settle_interval: float = 2.0

    def delay(self, attempt: int, retry_after: float | None = None, rng=random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay * 10)
        cap = min(self.max_delay, self.base_delay * (2 ** max(attempt - 1, 0)))
        return rng.uniform(cap / 2, cap)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date: rare for Matomo; fall back to our own backoff
