"""What Matomo's DeviceDetector says about each user agent, remembered across runs.

A pretable needs, per distinct agent, whether DeviceDetector calls it a bot and the browser label
and version Matomo stores (:class:`~.matomo_rules.MatomoBrowsers`). DeviceDetector compiles its
regexes as it meets them: a fresh process pays about a second before the first answers, every
day, although a site sees mostly the agents of the days before. So the answers are kept in
``<home>/cache/device_detector-<version>-f<format>.json``: a new release of the detector starts an
empty file, and the answers for one release never change, so a stale or lost file only costs time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import write_text
from ..matomo.device_bots import LIST_VERSION

KEEP = 100_000  # agents remembered, in this run and on disk; the least recently met are forgotten first
# The answers' shape and this project's last step after DeviceDetector (labels, version
# truncation): a change to either starts a new file, as a new DeviceDetector release does.
FORMAT = 1


def agents_cache_path(home: str | os.PathLike) -> Path:
    return Path(home) / "cache" / f"device_detector-{LIST_VERSION}-f{FORMAT}.json"


class AgentFacts:
    """user agent -> (DeviceDetector bot?, stored browser label, stored version)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._facts: dict[str, tuple[bool, str, str]] = {}
        self._browsers = None
        self.learned = 0  # agents asked of DeviceDetector in this run
        if path is not None:
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self._facts = {agent: (bool(f[0]), str(f[1]), str(f[2])) for agent, f in raw.items()}
            except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
                self._facts = {}  # missing or damaged: DeviceDetector answers again

    def __call__(self, agent: str) -> tuple[bool, str, str]:
        facts = self._facts
        found = facts.pop(agent, None)  # met again: to the end, the most recently met
        if found is None:
            if self._browsers is None:
                from .matomo_rules import MatomoBrowsers

                self._browsers = MatomoBrowsers()
            found = (self._browsers.is_bot(agent), *self._browsers(agent))
            self.learned += 1
            if len(facts) >= KEEP:  # a flood of made-up agents must not grow memory with the day
                for stale in list(facts)[: KEEP // 10]:
                    del facts[stale]
        facts[agent] = found
        return found

    def save(self) -> None:
        """Write the answers back when this run learned any (best effort: a cache)."""
        if self.path is None or not self.learned:
            return
        try:
            write_text(self.path, json.dumps({agent: list(f) for agent, f in self._facts.items()}))
        except OSError:
            pass
