"""Time windows of usage reports, named as WeNet memex names them, as whole site-local days.

memex (``memex_logging`` 2.x) anchors its moving windows at *local midnight today*:

* ``TODAY``         → today only;
* ``nD`` (1D, 7D, 10D, 30D, ...) → the ``n`` full days before today (today excluded);
* ``nW`` / ``nM`` / ``nY``      → from today − n weeks / months / years to yesterday
  (calendar arithmetic: 1M on 2024-03-31 starts 2024-02-29);
* ``ALL``           → from the site's first day to yesterday;
* a fixed window ``START_TIME``/``END_TIME`` (ISO) wins over the range name, as in memex's scripts.

Our windows are always whole calendar days in the site's timezone, so a DST change never makes a
day 23 or 25 hours "shorter" or "longer" in window arithmetic: a 7D window is 7 dates.

Fixed windows (chosen semantics, documented in the CLI help): memex compares timestamps with
``gte``/``lte``. We widen both ends to full local days: the start's local date is the first day;
the end is inclusive, so ``--end 2024-03-07`` includes all of 7 March; a datetime end at exactly
local midnight (``2024-03-08T00:00``), which is how memex's own moving windows end, means "up to
that midnight" and therefore ends on 7 March. Aware datetimes are moved into the site timezone
first; naive ones are site-local.

For Dagster, :func:`window_ending` gives the window that *ends on* a partition day.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta

from ..errors import InputError
from ..site_time import site_zone

NAMED = ("TODAY", "ALL")
EXAMPLES = "TODAY, 1D, 7D, 10D, 30D, ALL or n followed by D/W/M/Y such as 12W, 6M, 1Y"
_MOVING = re.compile(r"^(\d{1,5})([DWMY])$")


@dataclass(frozen=True)
class Window:
    """Days ``first_day`` to ``last_day``, both included; ``label`` names it in outputs."""

    first_day: dt.date
    last_day: dt.date
    label: str

    def days(self) -> list[dt.date]:
        n = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=i) for i in range(max(0, n))]

    def __len__(self) -> int:
        return max(0, (self.last_day - self.first_day).days + 1)

    def __str__(self) -> str:
        return f"{self.label} ({self.first_day.isoformat()}..{self.last_day.isoformat()})"


def _moving_start(name: str, today: dt.date, first_day: dt.date | None) -> dt.date:
    """First day of the moving window ``name`` (already upper-case) anchored at ``today``."""
    if name == "TODAY":
        return today
    if name == "ALL":
        if first_day is None:
            raise InputError("window ALL needs the site's first day (start_date in the sites file)")
        return first_day
    match = _MOVING.match(name)
    if not match:
        raise InputError(f"unknown window {name!r}; use {EXAMPLES}, or --start/--end ISO dates")
    n, unit = int(match.group(1)), match.group(2)
    if n < 1:
        raise InputError(f"window {name!r} is empty; the number must be 1 or more, e.g. 7D")
    delta = {"D": relativedelta(days=n), "W": relativedelta(weeks=n),
             "M": relativedelta(months=n), "Y": relativedelta(years=n)}[unit]
    return today - delta


def _parse_iso(text, what: str, zone: dt.tzinfo) -> tuple[dt.date, bool]:
    """(local date, is exactly local midnight of a datetime) of an ISO date or datetime."""
    if isinstance(text, dt.datetime):
        value = text
    elif isinstance(text, dt.date):
        return text, False
    else:
        raw = str(text).strip()
        try:
            if len(raw) == 10:
                return dt.date.fromisoformat(raw), False
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InputError(f"{what} {raw!r} is not an ISO date or datetime; use e.g. 2024-03-01 "
                             "or 2024-03-01T00:00:00+01:00") from None
    local = value.astimezone(zone) if value.tzinfo is not None else value
    return local.date(), (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)


def resolve_window(range_name: str | None, start=None, end=None, *, tz="UTC", today: dt.date | None = None,
                   first_day: dt.date | None = None) -> Window:
    """The window for a memex range name, or for explicit ISO ``start``/``end`` (which win).

    ``today`` defaults to the current date in ``tz``; ``first_day`` is the site's first day (for
    ALL). Raises :class:`InputError` (one line) for an unknown name, a bad ISO text, a missing
    half of start/end, or an end before the start.
    """
    zone = site_zone(tz)
    if today is None:
        today = dt.datetime.now(zone).date()
    if start is not None or end is not None:
        if start is None or end is None:
            raise InputError("give both --start and --end (ISO dates), or a --range such as 7D")
        first, _ = _parse_iso(start, "start", zone)
        last, at_midnight = _parse_iso(end, "end", zone)
        if at_midnight and last > first:
            last -= dt.timedelta(days=1)  # ends at that midnight: the day before is the last one
        if last < first:
            raise InputError(f"end {end} is before start {start}; swap them or fix the dates")
        return Window(first, last, f"{first.isoformat()}..{last.isoformat()}")
    if range_name is None or not str(range_name).strip():
        raise InputError(f"no window given; use --range ({EXAMPLES}) or --start and --end")
    name = str(range_name).strip().upper()
    first = _moving_start(name, today, first_day)
    last = today if name == "TODAY" else today - dt.timedelta(days=1)
    if last < first:
        raise InputError(f"window {name} ends on {last} before the site's first day {first}; "
                         "choose a later day or an explicit --start/--end")
    return Window(first, last, name)


def window_ending(range_name: str, last_day: dt.date, *, first_day: dt.date | None = None) -> Window:
    """The window named ``range_name`` whose last day is ``last_day`` (a Dagster partition).

    Same arithmetic as :func:`resolve_window` with today = the day after ``last_day``, except that
    ``TODAY`` means the partition day itself (as 1D does).
    """
    name = str(range_name).strip().upper()
    if name == "TODAY":
        return Window(last_day, last_day, name)
    return resolve_window(name, tz="UTC", today=last_day + dt.timedelta(days=1), first_day=first_day)


__all__ = ["EXAMPLES", "Window", "resolve_window", "window_ending"]
