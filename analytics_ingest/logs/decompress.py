"""Compression sniffing and streaming decompression with bounded memory.

The kind of a file is decided by its first bytes, never by its name: rotated logs are often
named ``access.log.gz.1`` or ``access.log.1`` whatever they contain.

:func:`raw_blocks` turns a binary stream into blocks of decompressed bytes, each at most
``OUT_BLOCK`` long, whatever the compression ratio (a 1 MiB gzip block of one repeated byte
would otherwise inflate to a gigabyte). A truncated or corrupt stream does not raise: the
blocks decoded before the damage are yielded, then :class:`StreamState` says what happened.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator

NONE, GZIP, BZ2, XZ = "none", "gzip", "bz2", "xz"

IN_BLOCK = 256 * 1024  # bytes read from the file per call
OUT_BLOCK = 256 * 1024  # at most this many decompressed bytes per yielded block
SNIFF_BYTES = 16  # enough for every magic number below

_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZ2_BLOCK_MAGIC = b"1AY&SY"  # pi, starts every bzip2 block
_BZ2_END_MAGIC = b"\x17rE8P\x90"  # sqrt(pi), ends a stream (alone in an empty .bz2)


def sniff(head: bytes) -> str:
    """Compression of a stream that starts with ``head`` (at least ``SNIFF_BYTES`` if the file has them)."""
    if head[:2] == _GZIP_MAGIC and head[2:3] == b"\x08" and not (head[3:4] or b"\x00")[0] & 0xE0:
        return GZIP  # magic, deflate, no reserved flag bits
    if head[:6] == _XZ_MAGIC:
        return XZ
    if (
        head[:3] == b"BZh"
        and head[3:4].isdigit()
        and head[3:4] != b"0"
        and head[4:10] in (_BZ2_BLOCK_MAGIC, _BZ2_END_MAGIC)
    ):
        return BZ2
    return NONE


class StreamState:
    """What :func:`raw_blocks` found out while reading; final once its iterator is exhausted."""

    __slots__ = ("incomplete", "reason", "bytes_in")

    def __init__(self) -> None:
        self.incomplete = False
        self.reason: str | None = None
        self.bytes_in = 0  # raw (compressed) bytes read so far

    def fail(self, reason: str) -> None:
        self.incomplete = True
        self.reason = reason


def raw_blocks(
    kind: str, head: bytes, read: Callable[[int], bytes], state: StreamState
) -> Iterator[bytes]:
    """Yield the decompressed content of ``head`` followed by ``read()``'s bytes, in blocks."""
    state.bytes_in = len(head)
    if kind == NONE:
        yield from _plain(head, read, state)
    elif kind == GZIP:
        yield from _gzip(head, read, state)
    elif kind == BZ2:
        yield from _stepwise(kind, head, read, state, bz2.BZ2Decompressor, (OSError, EOFError, ValueError))
    elif kind == XZ:
        yield from _stepwise(kind, head, read, state, _xz_decompressor, (lzma.LZMAError, EOFError, ValueError))
    else:  # pragma: no cover - guarded by sniff()
        raise ValueError(f"unknown compression {kind!r}")


def _xz_decompressor() -> lzma.LZMADecompressor:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


def _plain(head: bytes, read: Callable[[int], bytes], state: StreamState) -> Iterator[bytes]:
    if head:
        yield head
    while True:
        block = read(IN_BLOCK)
        if not block:
            return
        state.bytes_in += len(block)
        yield block


def _truncated(kind: str, state: StreamState) -> None:
    state.fail(f"{kind} stream ends early after {state.bytes_in} bytes (truncated file?)")


def _corrupt(kind: str, state: StreamState, exc: BaseException) -> None:
    state.fail(f"{kind} data is corrupt within the first {state.bytes_in} bytes ({exc}); lines before it were read")


def _next_member(kind: str, rest: bytes, read: Callable[[int], bytes], state: StreamState, magic: bytes) -> bytes | None:
    """After one compressed stream ends: the start of the next one, or None at a clean end.

    Zero bytes are padding (xz allows it; gzip writers sometimes pad to a block size). Anything
    else that is not a new stream is reported, not silently dropped.
    """
    while True:
        stripped = rest.lstrip(b"\x00")
        if stripped:
            if len(stripped) < len(magic):
                more = read(IN_BLOCK)
                if more:
                    state.bytes_in += len(more)
                    rest = stripped + more
                    continue
            if stripped[: len(magic)] == magic:
                return stripped
            state.fail(
                f"{kind} stream is followed by data that is not {kind} "
                f"(within the first {state.bytes_in} bytes); lines before it were read"
            )
            return None
        rest = read(IN_BLOCK)
        if not rest:
            return None
        state.bytes_in += len(rest)


def _gzip(head: bytes, read: Callable[[int], bytes], state: StreamState) -> Iterator[bytes]:
    kind = GZIP
    buf = head
    while buf is not None:  # one iteration per gzip member
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            while not d.eof:
                if not buf:
                    buf = read(IN_BLOCK)
                    if not buf:
                        tail = d.flush()
                        if tail:
                            yield tail
                        _truncated(kind, state)
                        return
                    state.bytes_in += len(buf)
                out = d.decompress(buf, OUT_BLOCK)
                buf = d.unconsumed_tail
                if out:
                    yield out
        except zlib.error as exc:
            _corrupt(kind, state, exc)
            return
        # At the end of a member, unused_data holds all input after it (unconsumed_tail may
        # still hold a stale copy of the same bytes: do not add it).
        buf = _next_member(kind, d.unused_data, read, state, _GZIP_MAGIC)


def _stepwise(kind: str, head: bytes, read: Callable[[int], bytes], state: StreamState, factory, errors) -> Iterator[bytes]:
    """bz2 and xz: decompressors with ``needs_input`` and internally buffered input."""
    magic = b"BZh" if kind == BZ2 else _XZ_MAGIC
    buf = head
    while buf is not None:  # one iteration per concatenated stream
        d = factory()
        try:
            while not d.eof:
                if d.needs_input:
                    if not buf:
                        buf = read(IN_BLOCK)
                        if not buf:
                            _truncated(kind, state)
                            return
                        state.bytes_in += len(buf)
                    out = d.decompress(buf, OUT_BLOCK)
                    buf = b""
                else:
                    out = d.decompress(b"", OUT_BLOCK)
                if out:
                    yield out
        except errors as exc:
            _corrupt(kind, state, exc)
            return
        buf = _next_member(kind, d.unused_data + buf, read, state, magic)
