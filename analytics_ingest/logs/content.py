"""What a log file *is*: its decompressed content, whatever its name or compression.

A file is identified by its content so that a renamed, rotated, re-spelled (``./a.log``,
``/abs/a.log``, a symlink) or recompressed log is never delivered twice. Three numbers describe a
content cheaply, all over the decompressed bytes:

* ``head``: sha256 of the first line (with its newline; at most ``HEAD_BYTES``) — the key that
  finds a known content again. Appending to a log never changes its first line.
* ``fingerprint``: sha256 of the first ``covered`` bytes (``FINGERPRINT_BYTES`` or the whole
  content when shorter) — tells whether a file with that head really is the known content, grown
  or not.
* ``size``: decompressed bytes. Plain files: their size. Compressed files are counted by
  streaming through them, only when needed: ``raw_digest`` (sha256 of the whole stored file, a
  fraction of a decompression) tells a byte-identical compressed file without it, so a daily
  ``import access.log*`` over rotated ``.gz`` files does not decompress them again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import InputError
from .decompress import NONE, SNIFF_BYTES, StreamState, raw_blocks, sniff

FINGERPRINT_BYTES = 64 * 1024
HEAD_BYTES = 4096


@dataclass
class Content:
    path: str
    head: str
    fingerprint: str
    covered: int
    raw_size: int
    compression: str
    raw_digest: str | None  # compressed files only (see the module docstring)
    _size: int | None = None

    @property
    def size(self) -> int:
        """Decompressed bytes (computed on first use for a compressed file)."""
        if self._size is None:
            self._size = content_size(self.path, self.compression)
        return self._size


def _blocks(path: str) -> tuple[Iterator[bytes], str, object]:
    try:
        stream = open(path, "rb", buffering=0)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions") from None
    try:
        head = b""
        while len(head) < SNIFF_BYTES:
            more = stream.read(SNIFF_BYTES - len(head))
            if not more:
                break
            head += more
    except OSError as exc:
        stream.close()
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions") from None
    kind = sniff(head)
    return raw_blocks(kind, head, stream.read, StreamState()), kind, stream


def content_prefix(path: str, length: int) -> tuple[bytes, str]:
    """The first ``length`` decompressed bytes of ``path`` (fewer if shorter) and its compression."""
    blocks, kind, stream = _blocks(path)
    parts, total = [], 0
    try:
        for block in blocks:
            parts.append(block)
            total += len(block)
            if total >= length:
                break
    finally:
        stream.close()
    return b"".join(parts)[:length], kind


def content_prefix_hash(path: str, length: int) -> str:
    data, _kind = content_prefix(path, length)
    return hashlib.sha256(data).hexdigest()


def content_size(path: str, compression: str | None = None) -> int:
    """Decompressed size of ``path`` (a plain file's own size, without reading it)."""
    if compression == NONE:
        return os.path.getsize(path)
    blocks, kind, stream = _blocks(path)
    try:
        if kind == NONE:
            return os.fstat(stream.fileno()).st_size
        return sum(len(block) for block in blocks)
    finally:
        stream.close()


def head_hash(prefix: bytes) -> str:
    newline = prefix.find(b"\n", 0, HEAD_BYTES)
    first = prefix[: newline + 1] if newline >= 0 else prefix[:HEAD_BYTES]
    return hashlib.sha256(first).hexdigest()


def content_of(path: str) -> Content:
    """Head, fingerprint and sizes of the file at ``path``."""
    try:
        raw_size = os.path.getsize(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions") from None
    prefix, kind = content_prefix(path, FINGERPRINT_BYTES)
    head = head_hash(prefix)
    if not prefix:
        # Empty files have no content to send twice, but each still stands for its day (a log of
        # a day without traffic): keep them apart by their path.
        head = hashlib.sha256(b"\0empty\0" + os.fsencode(os.path.realpath(path))).hexdigest()
    return Content(
        path=path,
        head=head,
        fingerprint=hashlib.sha256(prefix).hexdigest(),
        covered=len(prefix),
        raw_size=raw_size,
        compression=kind,
        raw_digest=None if kind == NONE else _file_digest(path),
        _size=raw_size if kind == NONE else None,
    )


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions") from None
    return digest.hexdigest()


__all__ = ["Content", "content_of", "content_prefix", "content_prefix_hash", "content_size", "head_hash",
           "FINGERPRINT_BYTES", "HEAD_BYTES"]
