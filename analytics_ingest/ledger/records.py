"""What the ledger hands out: a file's record and a day's record, read from their rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from ..vocabulary import KIND_LOG
from . import schema as S


@dataclass(frozen=True)
class FileRecord:
    id: int
    site_id: int
    path: str
    size: int
    fingerprint: str
    fingerprint_len: int
    day: dt.date | None
    status: str
    invalid_reason: str | None
    plan: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    kind: str = KIND_LOG
    content_head: str = ""
    variant: int = 0
    raw_size: int | None = None
    raw_digest: str | None = None


@dataclass(frozen=True)
class DayRecord:
    site_id: int
    day: dt.date
    status: str
    expected: int
    found: int
    loaded: int
    updated_at: dt.datetime


def _from_row(cls, row):
    """A record from a row whose columns carry the record's field names."""
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


# The columns a FileRecord is read from: its fields (never the lease columns: those are the lease's business).
FILE_COLUMNS = [S.files.c[f.name] for f in fields(FileRecord)]


def file_record(row) -> FileRecord:
    return _from_row(FileRecord, row)


def day_record(row) -> DayRecord:
    return _from_row(DayRecord, row)
