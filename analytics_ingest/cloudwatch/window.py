"""Ad hoc replay windows: two ISO 8601 texts → an aware UTC ``[start, end)``, and the days it touches.

GDS's replayer accepted only ``%Y-%m-%dT%H:%M:%SZ`` and read naive datetimes in the machine's
local time; here any ISO 8601 form is accepted (``Z``, offsets, fractions, a bare date), a
naive value means UTC, and the span is bounded so a typo (a year instead of a day) cannot start
thousands of CloudWatch queries.
"""

from __future__ import annotations

import datetime as dt

from ..errors import ConfigError, InputError
from ..site_time import site_zone

ENV_MAX_SPAN_HOURS = "ANALYTICS_INGEST_REPLAY_MAX_SPAN_HOURS"
DEFAULT_MAX_SPAN = dt.timedelta(days=7)


def parse_max_span(text: str | None) -> dt.timedelta:
    """``ANALYTICS_INGEST_REPLAY_MAX_SPAN_HOURS`` (a positive number of hours); unset: 7 days."""
    raw = (text or "").strip()
    if not raw:
        return DEFAULT_MAX_SPAN
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not hours > 0 or hours > 24 * 366 * 10:
        raise ConfigError(f"{ENV_MAX_SPAN_HOURS} must be a positive number of hours, got {raw[:40]!r}")
    return dt.timedelta(hours=hours)


def parse_instant(text: str, what: str) -> dt.datetime:
    """One ISO 8601 date-time (or date) as an aware UTC datetime; naive means UTC."""
    raw = (text or "").strip()
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"{what} {raw[:60]!r} is not an ISO 8601 date-time; write e.g. 2020-09-28T12:13:14Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def parse_window(
    start_text: str, end_text: str, *, max_span: dt.timedelta | None = DEFAULT_MAX_SPAN
) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` in UTC from two ISO 8601 texts.

    ``max_span``: the longest window allowed (the CloudWatch settings' ``max_span``; default 7
    days); None checks no length, for a caller that checks it later with :func:`check_span`.
    Raises a one-line :class:`InputError` for a bad text, an empty or reversed window, or one too long.
    """
    start = parse_instant(start_text, "start")
    end = parse_instant(end_text, "end")
    if end <= start:
        raise InputError(
            f"the window ends ({end:%Y-%m-%dT%H:%M:%SZ}) before it starts ({start:%Y-%m-%dT%H:%M:%SZ}); "
            "give the start first"
        )
    if max_span is not None:
        check_span(start, end, max_span)
    return start, end


def check_span(start: dt.datetime, end: dt.datetime, limit: dt.timedelta) -> None:
    """One-line :class:`InputError` when ``[start, end)`` lasts longer than ``limit``."""
    if end - start > limit:
        hours = limit.total_seconds() / 3600
        raise InputError(
            f"the window lasts {(end - start).total_seconds() / 3600:g} h, more than the {hours:g} h allowed; "
            f"split it or raise {ENV_MAX_SPAN_HOURS}"
        )


def days_touched(start: dt.datetime, end: dt.datetime, tz="UTC") -> list[dt.date]:
    """The local days (in ``tz``) that ``[start, end)`` overlaps, in order."""
    zone = site_zone(tz)
    if end <= start:
        return []
    first = start.astimezone(zone).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(zone).date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def local_day(timestamp_ms: int, tz="UTC") -> dt.date:
    """The local day (in ``tz``) of an epoch-milliseconds timestamp."""
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.timezone.utc).astimezone(site_zone(tz)).date()


def to_ms(value: dt.datetime) -> int:
    """Epoch milliseconds of an aware (or naive = UTC) datetime, without float rounding."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


__all__ = ["DEFAULT_MAX_SPAN", "ENV_MAX_SPAN_HOURS", "check_span", "days_touched", "local_day", "parse_instant",
           "parse_max_span", "parse_window", "to_ms"]
