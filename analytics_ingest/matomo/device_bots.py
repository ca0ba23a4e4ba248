"""Which user agents Matomo's DeviceDetector calls bots: hits Matomo's tracker may drop.

Matomo 4.12.3 (``VisitExcluded::isNonHumanBot``) drops a request sent without ``bots=1`` when
DeviceDetector recognises its user agent as a bot, and still answers it as tracked. The patterns
are DeviceDetector's ``bots.yml``, read from the ``device_detector`` package (a Python port that
ships the same YAML); they are matched as DeviceDetector does (``AbstractParser::matchUserAgent``:
case-insensitive, after a start or a non-name character), with the ``regex`` module because one
pattern (the generic ``…bot``) needs a variable-width look-behind.

A Matomo server runs the list of its own DeviceDetector release (4.12.3: 6.0.4, 452 patterns);
this one is newer (:data:`LIST_VERSION`) and mostly adds bots, so a hit counted here is one Matomo
*may* have dropped: the archive check takes these hits as a tolerance, not as certain exclusions.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources

_CACHE_LIMIT = 100_000
_PREFIX = r"(?:^|[^A-Z0-9\-_]|[^A-Z0-9\-]_|sprd-|MZ-)"  # DeviceDetector's matchUserAgent


def _version() -> str:
    try:
        return importlib.metadata.version("device_detector")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a declared dependency
        return "unknown"


LIST_VERSION = _version()


@functools.lru_cache(maxsize=1)
def _matcher():
    """(pattern count, search) of bots.yml, read and compiled once per process (~0.4 s): the
    archive check and every pretable of a run share it."""
    import regex
    import yaml

    source = importlib.resources.files("device_detector") / "regexes" / "upstream" / "bots.yml"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: a tenth of the pure-Python time
    patterns = [entry["regex"] for entry in yaml.load(source.read_text(encoding="utf-8"), Loader=loader)]
    if not patterns:  # pragma: no cover - a broken install must not pass every hit as human
        raise RuntimeError("device_detector's bots.yml holds no patterns; reinstall device_detector")
    return len(patterns), regex.compile(f"{_PREFIX}(?:{'|'.join(patterns)})", regex.IGNORECASE).search


class DeviceBots:
    """user agent → is a DeviceDetector bot, cached per distinct agent (a day repeats a few
    thousand agents millions of times; one search of the 843-pattern alternation is ~0.2 ms)."""

    def __init__(self) -> None:
        self._cache: dict[str, bool] = {}

    @property
    def patterns(self) -> int:
        return _matcher()[0]

    @property
    def name(self) -> str:
        return f"bots.yml of device_detector {LIST_VERSION}, {self.patterns} patterns"

    def __call__(self, agent: str) -> bool:
        found = self._cache.get(agent)
        if found is None:
            # compiled on the first agent not known yet (pretables mostly meet known ones)
            found = bool(agent) and _matcher()[1](agent) is not None
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[agent] = found
        return found


__all__ = ["DeviceBots", "LIST_VERSION"]
