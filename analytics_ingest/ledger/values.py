"""What every part of the ledger checks and converts the same way: the time, dates, status words."""

from __future__ import annotations

import datetime as dt

from ..vocabulary import DAY_STATUSES, FILE_STATUSES


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def as_date(value: dt.date | None, what: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise ValueError(f"{what} must be a date, not {type(value).__name__}")


def check_file_status(status: str) -> str:
    if status not in FILE_STATUSES:
        raise ValueError(f"unknown file status {status!r}; expected one of {', '.join(FILE_STATUSES)}")
    return status


def check_day_status(status: str) -> str:
    if status not in DAY_STATUSES:
        raise ValueError(f"unknown day status {status!r}; expected one of {', '.join(DAY_STATUSES)}")
    return status
