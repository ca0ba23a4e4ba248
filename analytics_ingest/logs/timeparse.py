"""Log timestamps to Matomo's ``cdt`` (``"YYYY-MM-DD HH:MM:SS"`` in UTC).

Each function here is the slow path behind a per-parser cache: a busy log repeats the same
timestamp string for every hit in the same second, so the parsers look the string up in a
dict first (:func:`cached`) and only come here on a miss. No ``strptime`` unless the user gave
a date format.

A time that is real but absurd for a web log — before 1991 (the web) or more than two days in
the future (a bad clock, a 9999 placeholder, a zeroed 1970 epoch) — makes the line invalid
(:data:`DATE_OUT_OF_RANGE`), never a hit on a ledger day. The parsers check :func:`cdt_bounds`
on a cache miss only, before caching, so a line whose timestamp is cached costs nothing more.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable

from .base import BAD_DATE

CACHE_LIMIT = 200_000  # entries; a cache that grows past it is emptied

# Invalid reason of a line whose time is real but absurd (BAD_DATE: no time at all).
DATE_OUT_OF_RANGE = "date_out_of_range"  # before EARLIEST_CDT or after now + FUTURE_DAYS
EARLIEST_CDT = "1991-01-01 00:00:00"  # UTC; the first web server logged in 1990-91
FUTURE_DAYS = 2  # clocks and time zones may run ahead a little, not more

_MONTHS = {
    name: number
    for number, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}

_APACHE = re.compile(
    r"\s*(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{1,2}):(\d{2}):(\d{2})(?:[.,]\d+)?"
    r"(?:\s*([+-]\d{2}:?\d{2}|[Zz]|UTC|GMT))?\s*$"
)
_ISO = re.compile(
    r"\s*(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,]\d+)?"
    r"\s*([+-]\d{2}(?::?\d{2})?|[Zz]|UTC|GMT)?\s*$"
)
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})?$")


def offset_seconds(tz: str | None) -> int | None:
    """``"+0200"``, ``"-05:00"``, ``"+02"``, ``"Z"``, ``""`` → seconds east of UTC; None if malformed."""
    if not tz:
        return 0
    tz = tz.strip()
    if tz in ("", "Z", "z", "UTC", "GMT"):
        return 0
    m = _OFFSET.match(tz)
    if m is None:
        return None
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 23 or minutes > 59:
        return None
    seconds = hours * 3600 + minutes * 60
    return -seconds if m.group(1) == "-" else seconds


def cdt_bounds() -> tuple[str, str]:
    """The earliest and latest acceptable ``cdt`` (inclusive), as of now: compare cdt strings with them."""
    latest = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None, microsecond=0) + _dt.timedelta(days=FUTURE_DAYS)
    return EARLIEST_CDT, latest.isoformat(" ")


def utc_cdt(year: int, month: int, day: int, hour: int, minute: int, second: int, offset: int) -> str | None:
    """The ``cdt`` of a local time ``offset`` seconds east of UTC; None if it is no real time."""
    try:
        t = _dt.datetime(year, month, day, hour, minute, second)
    except (ValueError, OverflowError):
        return None
    if offset:
        try:
            t -= _dt.timedelta(seconds=offset)
        except OverflowError:
            pass  # year 1 or 9999: out of range (cdt_bounds) whatever the offset
    return t.isoformat(" ")


_days: dict[str, tuple[int, str, str, str] | None] = {}  # "10/Oct/2024 +0200" -> see _apache_day


def _apache_day(key: str) -> tuple[int, str, str, str] | None:
    """Offset, previous, same and next UTC day (as text) for an Apache date and offset."""
    m = _APACHE.match(key[:11] + ":12:00:00" + key[11:])
    if m is None:
        return None
    day, mon, year, _h, _m, _s, tz = m.groups()
    month = _MONTHS.get(mon.lower())
    offset = offset_seconds(tz)
    if month is None or offset is None:
        return None
    try:
        date = _dt.date(int(year), month, int(day))
        one = _dt.timedelta(days=1)
        return offset, (date - one).isoformat(), date.isoformat(), (date + one).isoformat()
    except (ValueError, OverflowError):
        return None


def apache_cdt(text: str, tz: str | None = None) -> str | None:
    """``"10/Oct/2024:23:30:00 +0200"`` (the offset inside, or as ``tz``) → ``cdt``; None if bad."""
    if tz is None and len(text) == 26 and text[11] == ":" and text[20] == " " and text[14] == text[17] == ":":
        # The usual layout: the date and offset part repeats all day, cache what it means.
        key = text[:11] + text[20:]
        day = _days.get(key)
        if day is None:
            day = _apache_day(key)
            if len(_days) >= 10_000:
                _days.clear()
            _days[key] = day
        clock = text[12:20]
        if day is not None and clock.replace(":", "").isdigit():
            hour, minute, second = int(clock[:2]), int(clock[3:5]), int(clock[6:8])
            if hour < 24 and minute < 60 and second < 60:
                seconds = hour * 3600 + minute * 60 + second - day[0]
                index = 2
                if seconds < 0:
                    seconds += 86400
                    index = 1
                elif seconds >= 86400:
                    seconds -= 86400
                    index = 3
                h, rest = divmod(seconds, 3600)
                return "%s %02d:%02d:%02d" % (day[index], h, rest // 60, rest % 60)
    m = _APACHE.match(text)
    if m is None:
        return None
    day, mon, year, hour, minute, second, inner = m.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        return None
    offset = offset_seconds(inner if inner is not None else tz)
    if offset is None:
        return None
    return utc_cdt(int(year), month, int(day), int(hour), int(minute), int(second), offset)


def apache_cdt_by_minute() -> Callable[[str], str | None]:
    """:func:`apache_cdt` with a cache of what each minute means: the slow path behind a parser's
    per-second cache. A busy log has up to 60 distinct stamps per minute and the per-second cache
    misses each once (a third of the lines of a 200,000-line day); this does the date, hour,
    minute and offset once per minute and appends the seconds.

    Exact because an offset is whole minutes: the seconds of the stamp are those of its ``cdt``,
    and a stamp with seconds 00-59 is a time exactly when the same minute at :00 is."""
    minutes: dict[str, str | None] = {}
    missing = ""

    def cdt_of(text: str) -> str | None:
        if len(text) == 26 and text[17] == ":" and text[20] == " " and text[18] in "012345" and "0" <= text[19] <= "9":
            key = text[:17] + text[20:]
            minute = minutes.get(key, missing)
            if minute is missing:
                whole = apache_cdt(text[:17] + ":00" + text[20:])
                minute = whole[:16] if whole is not None else None
                if len(minutes) >= 10_000:
                    minutes.clear()
                minutes[key] = minute
            return minute + text[17:20] if minute is not None else None
        return apache_cdt(text)

    return cdt_of


def iso_cdt(text: str, tz: str | None = None) -> str | None:
    """ISO 8601 (``2024-10-10T23:30:00.123+02:00``, ``...Z``, space separator, no offset = UTC)."""
    m = _ISO.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, inner = m.groups()
    offset = offset_seconds(inner if inner is not None else tz)
    if offset is None:
        return None
    return utc_cdt(int(year), int(month), int(day), int(hour), int(minute), int(second), offset)


def any_cdt(text: str, tz: str | None = None) -> str | None:
    """Apache or ISO 8601, whichever the text is."""
    return apache_cdt(text, tz) or iso_cdt(text, tz)


def strptime_converter(date_format: str) -> Callable[[str, str | None], str | None]:
    """A converter for a user-given ``strptime`` format (``%z`` honoured; else ``tz`` or UTC)."""

    def convert(text: str, tz: str | None = None) -> str | None:
        try:
            t = _dt.datetime.strptime(text.strip(), date_format)
        except ValueError:
            return None
        if t.tzinfo is not None:
            offset = int(t.utcoffset().total_seconds())
            t = t.replace(tzinfo=None)
        else:
            offset = offset_seconds(tz)
            if offset is None:
                return None
        return utc_cdt(t.year, t.month, t.day, t.hour, t.minute, t.second, offset)

    return convert


def cached(convert: Callable[..., str | None]) -> Callable[[str], str | None]:
    """Wrap a one-argument converter in a bounded dict cache (for the less hot parsers).

    The lookup returns None for a text that is no acceptable time; ``lookup.reason`` then says
    why (:data:`BAD_DATE` or :data:`DATE_OUT_OF_RANGE`). Only acceptable times are cached.
    """
    cache: dict[str, str] = {}
    get = cache.get
    low, high = cdt_bounds()

    def lookup(text: str) -> str | None:
        cdt = get(text)
        if cdt is None:
            cdt = convert(text)
            if cdt is None:
                lookup.reason = BAD_DATE
                return None
            if cdt < low or cdt > high:
                lookup.reason = DATE_OUT_OF_RANGE
                return None
            if len(cache) >= CACHE_LIMIT:
                cache.clear()
            cache[text] = cdt
        return cdt

    lookup.reason = BAD_DATE
    return lookup
