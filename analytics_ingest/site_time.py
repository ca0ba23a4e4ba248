"""A site's timezone and its local days, in one place.

A day is the site's local day everywhere: in the ledger's day counts, the lanes' day gate, the
worker processes, discovery, the pretables and the reports. Every one of them turns the site's
timezone name into a ``tzinfo`` here, so they cannot disagree.

Matomo stores a site's timezone as an IANA name (``Europe/Paris``) or, for a site set to a manual
UTC offset, as ``UTC``, ``UTC+5.5`` or ``UTC-11.5`` (hours; ``.25``, ``.5``, ``.75`` for :15, :30,
:45). The sites file takes IANA names only, because Dagster's daily partitions do.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable

from .errors import ConfigError

_UTC_NAMES = frozenset({"", "UTC", "Etc/UTC", "GMT", "Etc/GMT", "UTC+0", "UTC-0", "UTC0"})
_MATOMO_OFFSET = re.compile(r"UTC([+-])(\d{1,2})(?:\.(25|5|75))?")
_QUARTERS = {None: 0, "25": 15, "5": 30, "75": 45}


def site_zone(timezone: str | dt.tzinfo | None) -> dt.tzinfo:
    """The ``tzinfo`` of a site's timezone name; a name neither IANA nor Matomo's ``UTC±H`` is a
    one-line :class:`ConfigError`."""
    if isinstance(timezone, dt.tzinfo):
        return timezone
    return _zone(timezone or "")


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> dt.tzinfo:
    if name in _UTC_NAMES:
        return dt.timezone.utc
    offset = _MATOMO_OFFSET.fullmatch(name)
    if offset is not None:
        sign, hours, quarter = offset.groups()
        delta = dt.timedelta(hours=int(hours), minutes=_QUARTERS[quarter])
        if delta <= dt.timedelta(hours=14):
            return dt.timezone(-delta if sign == "-" else delta, name)
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(f"unknown timezone {name[:60]!r}; use an IANA name such as Europe/Paris "
                          "(or Matomo's UTC+5.5 form)") from None


class LocalDay:
    """A site's local day as a span of UTC time."""

    def __init__(self, timezone: str | dt.tzinfo | None) -> None:
        self.tz = site_zone(timezone)

    def bounds_utc(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) of the local day in UTC (23 or 25 hours across DST changes)."""
        start = dt.datetime.combine(day, dt.time(), self.tz).astimezone(dt.timezone.utc)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), self.tz).astimezone(dt.timezone.utc)
        return start, end


def local_days(utc_minutes: dict[str, int], timezone: str | dt.tzinfo | None) -> dict[str, int]:
    """Fold per-UTC-minute counts (``"YYYY-MM-DD HH:MM"``) into site-local days (``YYYY-MM-DD``)."""
    day_of = local_day_of_minute(timezone)
    days: dict[str, int] = {}
    for minute, n in utc_minutes.items():
        day = day_of(minute)
        days[day] = days.get(day, 0) + n
    return days


def local_day_of_minute(timezone: str | dt.tzinfo | None) -> Callable[[str], str]:
    """``"YYYY-MM-DD HH:MM"`` (a UTC minute, a ``cdt[:16]``) -> the site-local day, cached; the same
    str object for each day, so lists of days pickle each day once. Minutes, not hours: in zones
    offset by :30 or :45 (India, Nepal, Chatham) one UTC hour holds the end of one local day and
    the start of the next. Built from the digits: ``strptime`` would load ``_strptime`` (30 ms of a
    CLI start) and is slower per call."""
    tz = site_zone(timezone)
    cache: dict[str, str] = {}
    interned: dict[str, str] = {}

    def day_of(minute: str) -> str:
        day = cache.get(minute)
        if day is None:
            utc = dt.datetime(int(minute[:4]), int(minute[5:7]), int(minute[8:10]), int(minute[11:13]),
                              int(minute[14:16]), tzinfo=dt.timezone.utc)
            local = utc.astimezone(tz).date().isoformat()
            if len(cache) >= 100_000:  # a file spanning years: memory stays flat
                cache.clear()
            day = cache[minute] = interned.setdefault(local, local)
        return day

    return day_of


__all__ = ["LocalDay", "local_day_of_minute", "local_days", "site_zone"]
