"""What the ledger hands out: a file's record and a day's record, read from their rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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


# The columns a FileRecord is read from (never the lease columns: those are the lease's business).
FILE_COLUMNS = [
    S.files.c[name]
    for name in (
        "id", "site_id", "path", "size", "fingerprint", "fingerprint_len", "day", "status",
        "invalid_reason", "plan", "created_at", "updated_at", "kind", "content_head", "variant", "raw_size", "raw_digest",
    )
]


def file_record(row) -> FileRecord:
    return FileRecord(
        id=row.id,
        site_id=row.site_id,
        path=row.path,
        size=row.size,
        fingerprint=row.fingerprint,
        fingerprint_len=row.fingerprint_len,
        day=row.day,
        status=row.status,
        invalid_reason=row.invalid_reason,
        plan=row.plan,
        created_at=row.created_at,
        updated_at=row.updated_at,
        kind=row.kind,
        content_head=row.content_head,
        variant=row.variant,
        raw_size=row.raw_size,
        raw_digest=row.raw_digest,
    )


def day_record(row) -> DayRecord:
    return DayRecord(
        site_id=row.site_id,
        day=row.day,
        status=row.status,
        expected=row.expected,
        found=row.found,
        loaded=row.loaded,
        updated_at=row.updated_at,
    )
