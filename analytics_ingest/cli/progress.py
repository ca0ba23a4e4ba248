"""A progress line on a terminal: lines read, lines/s and an ETA from the bytes consumed."""

from __future__ import annotations

import os
import sys
import time


class Progress:
    def __init__(self, stream=None, interval: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.lines = 0
        self.started = time.monotonic()
        self._last = 0.0
        self._label = ""
        self._size = 0

    def start_file(self, path: str) -> None:
        self._label = os.path.basename(path)
        try:
            self._size = os.path.getsize(path)
        except OSError:
            self._size = 0
        self.lines = 0
        self.started = time.monotonic()

    def advance(self, n: int, source=None) -> None:
        self.lines += n
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-6)
        rate = self.lines / elapsed
        eta = ""
        position = getattr(source, "raw_position", None)
        if self._size and callable(position):
            done = position() / self._size
            if 0 < done <= 1:
                eta = f", ETA {elapsed * (1 - done) / done:.0f} s"
        self.stream.write(f"\r{self._label}: {self.lines:,} lines, {rate:,.0f} lines/s{eta}   ")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
