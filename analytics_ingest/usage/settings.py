"""The usage reports' settings, read from the environment in one place: :meth:`UsageSettings.from_env`.

The shells (the CLI's ``report``, the Dagster code location) call it; the engine takes the typed
settings. Light on purpose (no numpy, no pyarrow): the CLI reads it before it knows it will report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError

ENV_WINDOWS = "ANALYTICS_INGEST_REPORT_WINDOWS"
ENV_OPENCAST_OUTPUT = "OPENCAST_OUTPUT"  # the harvester's output ({day} replaced), when a file
DEFAULT_WINDOWS = ("TODAY", "7D", "30D")  # memex's first catalogue: today, last week, last month


def parse_windows(text: str | None) -> tuple[str, ...]:
    """``ANALYTICS_INGEST_REPORT_WINDOWS``: comma-separated window names; unset: the defaults."""
    from .windows import window_ending

    names = tuple(n.strip().upper() for n in (text or "").split(",") if n.strip()) or DEFAULT_WINDOWS
    for name in names:
        try:
            window_ending(name, dt.date(2024, 1, 31), first_day=dt.date(2024, 1, 1))
        except Exception as exc:  # noqa: BLE001 - turned into the one-line config error below
            raise ConfigError(f"{ENV_WINDOWS}: {exc}") from None
    return names


@dataclass(frozen=True)
class UsageSettings:
    windows: tuple[str, ...] = DEFAULT_WINDOWS  # the windows each day's reports cover
    # Where the Opencast harvester writes a day's actions (OPENCAST_OUTPUT); None: its default file
    # under the home. A queue (sqs://...) leaves the reports without Opencast counts.
    opencast_output: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> UsageSettings:
        return cls(windows=parse_windows(env.get(ENV_WINDOWS)), opencast_output=env.get(ENV_OPENCAST_OUTPUT) or None)


__all__ = ["DEFAULT_WINDOWS", "ENV_OPENCAST_OUTPUT", "ENV_WINDOWS", "UsageSettings", "parse_windows"]
