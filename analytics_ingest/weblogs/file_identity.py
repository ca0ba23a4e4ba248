"""Which ledger record a file on disk is: found by its content, never by the path as typed.

:func:`identify` resolves the path (symlinks, ``./``, relative spellings) and compares the file's
decompressed content with the contents this destination already knows that start with the same
first line (:mod:`analytics_ingest.logs.content`):

============  ===============================================================================
relation      meaning
============  ===============================================================================
``new``       no known content starts like it: registered now
``same``      the known content, under any name or compression
``grown``     the known content with lines appended (rsync, a live log): continue after it
``shorter``   a prefix of the known content (an older copy): everything in it is known
``conflict``  same first line, different content after it (a log re-written in place): refused,
              unless ``force``, which registers it as another content (a new ``variant``)
============  ===============================================================================

Rows from before content identity (``content_head = ''``) are matched once by path and
fingerprint (raw or decompressed) and then filled in, so an upgrade sends nothing again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InputError
from ..ledger import ContentTaken
from ..logs.content import Content, content_of, content_prefix_hash
from ..logs.reader import prefix_fingerprint
from ..vocabulary import FILE_QUEUE, KIND_LOG

NEW, SAME, GROWN, SHORTER, CONFLICT = "new", "same", "grown", "shorter", "conflict"


@dataclass(frozen=True)
class Identified:
    record: object  # ledger.FileRecord
    relation: str
    content: Content
    path: str


def resolve_path(path: str) -> str:
    """The one spelling of a path: absolute, symlinks resolved."""
    return os.path.realpath(path)


def _matches(path: str, content: Content, record) -> bool:
    """The file's content agrees with the record's over the record's fingerprinted prefix."""
    if content.covered < record.fingerprint_len:  # shorter than that prefix (covered = min(size, 64 KiB))
        return False
    if record.fingerprint_len == content.covered:
        return content.fingerprint == record.fingerprint
    return content_prefix_hash(path, record.fingerprint_len) == record.fingerprint


def is_recorded_content(path: str, record) -> bool:
    """The file at ``path`` is still the content ``record`` describes: same fingerprinted prefix and
    same decompressed size (not grown, shortened or replaced since)."""
    content = content_of(path)
    return content.size == record.size and _matches(path, content, record)


def same_bytes(content: Content, record) -> bool:
    """The stored file is byte for byte the compressed file the record last saw whole."""
    return content.raw_digest is not None and content.raw_digest == record.raw_digest


def _relation(content: Content, record) -> str:
    if same_bytes(content, record) or content.size == record.size:
        return SAME
    return GROWN if content.size > record.size else SHORTER


def _identified(ledger, record, content: Content, path: str) -> Identified:
    relation = _relation(content, record)
    if relation == SAME and content.raw_digest and record.raw_digest != content.raw_digest:
        # Remember this compressed copy, so the next look at it needs no decompression.
        ledger.update_file(record.id, raw_digest=content.raw_digest, raw_size=content.raw_size)
        record = ledger.get_file_by_id(record.id)
    return Identified(record, relation, content, path)


def _adopt_legacy(ledger, site_id: int, path: str, content: Content):
    """A row written before content identity, at this path and with this content."""
    record = ledger.get_file(site_id, path)
    if record is None or record.content_head:
        return None
    raw_ok = prefix_fingerprint(path, record.fingerprint_len) == record.fingerprint
    if not (raw_ok or _matches(path, content, record)):
        return None
    ledger.update_file(record.id, content_head=content.head)
    return ledger.get_file_by_id(record.id)


def identify(ledger, site_id: int, path: str, *, kind: str = KIND_LOG, day=None, status: str = FILE_QUEUE,
             force: bool = False) -> Identified:
    """The record of the content at ``path`` (registered if new); see the module docstring."""
    path = resolve_path(path)
    content = content_of(path)
    for _attempt in range(10):
        candidates = ledger.files_with_head(site_id, content.head)
        for record in candidates:
            if _matches(path, content, record):
                return _identified(ledger, record, content, path)
        legacy = _adopt_legacy(ledger, site_id, path, content)
        if legacy is not None:
            return _identified(ledger, legacy, content, path)
        if candidates and not force:
            known = candidates[0]
            raise InputError(
                f"{path} starts like {known.path} (already in the ledger) but its content differs after that; "
                "its hits may already be in Matomo — pass --force to import it as another file"
            )
        variant = max((r.variant for r in candidates), default=-1) + 1
        try:
            record = ledger.register_file(
                path=path, site_id=site_id, size=content.size, fingerprint=content.fingerprint,
                fingerprint_len=content.covered, day=day, status=status, kind=kind, content_head=content.head,
                variant=variant, raw_size=content.raw_size, raw_digest=content.raw_digest,
            )
        except ContentTaken:
            continue  # registered by another process meanwhile: compare with it
        return Identified(record, NEW if not candidates else CONFLICT, content, path)
    raise InputError(f"{path}: could not register its content (too many concurrent registrations); retry")


__all__ = ["identify", "resolve_path", "Identified", "NEW", "SAME", "GROWN", "SHORTER", "CONFLICT"]
