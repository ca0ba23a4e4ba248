"""Files: the contents this destination knows, how to find them, and the days they cover."""

from __future__ import annotations

import datetime as dt
import hashlib
import operator
from typing import Mapping

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..vocabulary import FILE_KINDS, FILE_QUEUE, KIND_LOG
from . import schema as S
from .records import FILE_COLUMNS, FileRecord, file_record
from .values import as_date, check_file_status, now

_UPDATABLE_FILE_FIELDS = ("size", "fingerprint", "fingerprint_len", "day", "status", "invalid_reason", "plan",
                          "path", "content_head", "raw_size", "raw_digest")


class ContentTaken(Exception):
    """Another process registered a content with this head and variant first."""


def path_hash(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()


def feeds_day(day: dt.date):
    """The one rule for "this file belongs to day D" (ledger, asset metadata and CLI alike): D is
    the day the file is for (its ``day`` column: named for it, or most of its hits) or one of the
    site-local days its content covers (``ledger_file_day``: a log spilling past midnight feeds
    the next day too)."""
    FD = S.file_days.c
    covers = select(FD.file_id).where(FD.file_id == S.files.c.id, FD.day == day).exists()
    return or_(S.files.c.day == day, covers)


class Files:
    """Mixed into :class:`analytics_ingest.ledger.Ledger` (needs ``_run``, ``_mine``, ``destination``)."""

    def register_file(
        self,
        *,
        path: str,
        site_id: int,
        size: int,
        fingerprint: str,
        fingerprint_len: int,
        day: dt.date | None = None,
        status: str = FILE_QUEUE,
        kind: str = KIND_LOG,
        content_head: str | None = None,
        new_variant: bool = False,
        variant: int | None = None,
        raw_size: int | None = None,
        raw_digest: str | None = None,
    ) -> FileRecord:
        """Add a content for this destination; a content already known (same head and fingerprint)
        is returned unchanged. ``content_head`` defaults to the fingerprint. ``new_variant``
        registers it again as another content (a file re-written in place, imported with --force).

        With an explicit ``variant`` (what :mod:`analytics_ingest.weblogs.file_identity` passes after
        comparing the content with every known one of that head) the row is inserted as is, and
        :class:`ContentTaken` says another process registered that head meanwhile: compare again.
        """
        check_file_status(status)
        if kind not in FILE_KINDS:
            raise ValueError(f"unknown file kind {kind!r}; use one of {', '.join(FILE_KINDS)}")
        if not path or len(path) > S.PATH_MAX:
            raise ValueError(f"file path must be 1 to {S.PATH_MAX} characters long")
        day = as_date(day, "day")
        head = content_head or fingerprint
        for _attempt in range(20):
            chosen = variant
            if chosen is None:
                same_head = self.files_with_head(site_id, head)
                if not new_variant:
                    for record in same_head:
                        if record.fingerprint == fingerprint and record.fingerprint_len == int(fingerprint_len):
                            return record
                chosen = max((r.variant for r in same_head), default=-1) + 1
            at = now()
            values = dict(
                destination=self.destination, site_id=int(site_id), path=path, path_hash=path_hash(path),
                content_head=head, variant=chosen, size=int(size), fingerprint=fingerprint,
                fingerprint_len=int(fingerprint_len), day=day, status=status, kind=kind,
                raw_size=None if raw_size is None else int(raw_size), raw_digest=raw_digest,
                created_at=at, updated_at=at,
            )
            try:
                new_id = self._run(lambda conn: conn.execute(insert(S.files).values(**values)).inserted_primary_key[0])
            except IntegrityError:
                if variant is not None:
                    raise ContentTaken(head) from None
                new_variant = False  # another process registered this head meanwhile: look again
                continue
            return self.get_file_by_id(new_id)
        raise RuntimeError(f"could not register {path}: too many concurrent registrations of the same content")

    def files_with_head(self, site_id: int, content_head: str) -> list[FileRecord]:
        """This destination's contents of the site whose first line hashes to ``content_head``."""
        F = S.files.c
        stmt = select(*FILE_COLUMNS).where(
            self._mine(), F.site_id == int(site_id), F.content_head == content_head
        ).order_by(F.variant)
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return [file_record(r) for r in rows]

    def get_file(self, site_id: int, path: str) -> FileRecord | None:
        """The content last seen at ``path`` (the newest such row of this destination)."""
        F = S.files.c
        stmt = select(*FILE_COLUMNS).where(
            self._mine(), F.site_id == int(site_id), F.path_hash == path_hash(path)
        ).order_by(F.id.desc())
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        for row in rows:
            if row.path == path:
                return file_record(row)
        return None

    def get_file_by_id(self, file_id: int) -> FileRecord:
        stmt = select(*FILE_COLUMNS).where(S.files.c.id == int(file_id))
        row = self._run(lambda conn: conn.execute(stmt).first(), read=True)
        if row is None:
            raise KeyError(f"no file with id {file_id} in the ledger")
        return file_record(row)

    def list_files(
        self, site_id: int | None = None, day: dt.date | None = None, status: str | None = None
    ) -> list[FileRecord]:
        """Files by id; with ``day``, those whose ``day`` is it or whose content covers it."""
        stmt = select(*FILE_COLUMNS).where(self._mine())
        if site_id is not None:
            stmt = stmt.where(S.files.c.site_id == int(site_id))
        if day is not None:
            stmt = stmt.where(feeds_day(as_date(day, "day")))
        if status is not None:
            stmt = stmt.where(S.files.c.status == check_file_status(status))
        stmt = stmt.order_by(S.files.c.id)
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return [file_record(r) for r in rows]

    def update_file(self, file_id: int, **fields) -> None:
        unknown = sorted(set(fields) - set(_UPDATABLE_FILE_FIELDS))
        if unknown:
            raise ValueError(f"cannot update file field(s) {', '.join(unknown)}; allowed: {', '.join(_UPDATABLE_FILE_FIELDS)}")
        if "status" in fields:
            check_file_status(fields["status"])
        if "day" in fields:
            fields["day"] = as_date(fields["day"], "day")
        if fields.get("invalid_reason") is not None:
            fields["invalid_reason"] = str(fields["invalid_reason"])[: S.REASON_MAX]
        for name in ("size", "fingerprint_len", "raw_size"):
            if name in fields and fields[name] is not None:
                fields[name] = int(fields[name])
        if "path" in fields:
            if not fields["path"] or len(fields["path"]) > S.PATH_MAX:
                raise ValueError(f"file path must be 1 to {S.PATH_MAX} characters long")
            fields["path_hash"] = path_hash(fields["path"])
        fields["updated_at"] = now()
        stmt = update(S.files).where(S.files.c.id == int(file_id)).values(**fields)
        rowcount = self._run(lambda conn: conn.execute(stmt).rowcount)
        if rowcount == 0:
            raise KeyError(f"no file with id {file_id} in the ledger")

    # -- the days a file's content covers ---------------------------------------------------
    def set_file_days(self, file_id: int, days: Mapping[dt.date, int]) -> None:
        """Replace the file's content days (day -> hits) in one transaction; ``{}`` clears them,
        after which the file feeds its ``day`` column's day only."""
        file_id = int(file_id)
        clean: dict[dt.date, int] = {}
        for key, hits in dict(days).items():
            day = as_date(key, "day")
            if day is None:
                raise ValueError("file days must be dates, not None")
            if day in clean:
                raise ValueError(f"day {day.isoformat()} given twice for file {file_id}")
            try:
                count = operator.index(hits)
            except TypeError:
                raise ValueError(f"hits for {day.isoformat()} must be an integer, not {type(hits).__name__}") from None
            if count < 0:
                raise ValueError(f"hits for {day.isoformat()} must be 0 or more, not {count}")
            clean[day] = count
        FD = S.file_days
        rows = [{"file_id": file_id, "day": day, "hits": hits} for day, hits in sorted(clean.items())]

        def work(conn: Connection) -> None:
            # Lock the file row: concurrent replacements of the same file's days take turns.
            found = conn.execute(select(S.files.c.id).where(S.files.c.id == file_id).with_for_update()).scalar()
            if found is None:
                raise KeyError(f"no file with id {file_id} in the ledger")
            conn.execute(delete(FD).where(FD.c.file_id == file_id))
            if rows:
                conn.execute(insert(FD), rows)

        self._run(work)

    def file_days(self, file_id: int) -> dict[dt.date, int]:
        """The file's content days and hits, by day (``{}`` if none were set)."""
        FD = S.file_days.c
        stmt = select(FD.day, FD.hits).where(FD.file_id == int(file_id)).order_by(FD.day)
        rows = self._run(lambda conn: conn.execute(stmt).all(), read=True)
        return {r.day: r.hits for r in rows}
