"""Open a log file (plain, gzip, bzip2 or xz; or stdin) and stream it as decoded lines.

Memory stays constant: the file is read in blocks, split on ``\\n`` and decoded one block at a
time. A line is only kept whole while it is at most ``MAX_LINE_BYTES`` long; a longer one is
reported once as :data:`TOO_LONG` and its remaining bytes are skipped as they arrive.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator

from ..errors import InputError
from .decompress import IN_BLOCK, SNIFF_BYTES, StreamState, raw_blocks, sniff

MAX_LINE_BYTES = 64 * 1024

# Stand-in for a line longer than MAX_LINE_BYTES. Compare with ``is``: built at run time so no
# decoded line can ever be this very object.
TOO_LONG: str = "".join(["<line longer than ", str(MAX_LINE_BYTES), " bytes, not parsed>"])

# A line of more than this many characters may be over MAX_LINE_BYTES bytes (UTF-8 needs at most
# four bytes per character, and the replacement character stands for at most three bad bytes).
_CHARS_CHECK = MAX_LINE_BYTES // 4


class LogSource:
    """One opened log: ``with open_log(path) as source: for chunk in source.chunks(): ...``."""

    def __init__(self, name: str, stream, owned: bool) -> None:
        self.name = name
        self._stream = stream
        self._owned = owned
        try:
            self._head = _read_at_least(stream, SNIFF_BYTES)
        except OSError as exc:
            self.close()
            raise _unreadable(name, exc) from None
        self.compression: str = sniff(self._head)
        self.incomplete: bool = False
        self.incomplete_reason: str | None = None
        self._started = False

    # -- context manager ----------------------------------------------------------------------
    def __enter__(self) -> LogSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._owned and self._stream is not None:
            self._stream.close()
        self._stream = None

    def raw_position(self) -> int:
        """Bytes of the file (compressed, as stored) consumed so far: for a progress ETA."""
        try:
            return self._stream.tell() if self._stream is not None else 0
        except (OSError, ValueError):
            return 0  # a pipe

    # -- reading ------------------------------------------------------------------------------
    def chunks(self) -> Iterator[list[str]]:
        """Yield lists of lines in file order (see the module docstring); single pass for stdin."""
        return self._read(_split_lines)

    def raw_chunks(self) -> Iterator[bytes | str]:
        """Like :meth:`chunks`, undecoded: ``bytes`` holding whole lines (no trailing newline),
        or ``TOO_LONG`` for an over-long line. Decode a part with :func:`decode_part`; a part
        holds ``part.count(b"\\n") + 1`` lines. Lets worker processes do the decoding."""
        return self._read(_split_raw)

    def _read(self, split) -> Iterator:
        if self._stream is None:
            raise ValueError(f"{self.name} is closed")
        head, self._head = self._head, b""
        if self._started:
            if not self._owned or not self._stream.seekable():
                raise ValueError("stdin can be read only once")
            self._stream.seek(0)
            head = _read_at_least(self._stream, SNIFF_BYTES)
        self._started = True
        self.incomplete, self.incomplete_reason = False, None
        return self._split_blocks(split, head)

    def _split_blocks(self, split, head: bytes) -> Iterator:
        state = StreamState()
        read = self._stream.read
        name = self.name

        def checked_read(size: int) -> bytes:
            try:
                return read(size)
            except OSError as exc:
                raise _unreadable(name, exc) from None

        blocks = raw_blocks(self.compression, head, checked_read, state)
        try:
            yield from split(blocks, state)
        finally:
            self.incomplete = state.incomplete
            self.incomplete_reason = state.reason


def decode_part(part) -> list[str]:
    """Lines of one part from :meth:`LogSource.raw_chunks`."""
    if part is TOO_LONG or isinstance(part, str):
        return [TOO_LONG]
    return _decode(part, len(part))


def part_line_count(part) -> int:
    return 1 if isinstance(part, str) else part.count(b"\n") + 1


def open_log(path: str | os.PathLike) -> LogSource:
    """Open ``path`` (``"-"`` is stdin); the compression is sniffed from the first bytes."""
    name = os.fspath(path)
    if name == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise InputError("cannot read -: there is no binary standard input; pass a file path instead")
        return LogSource("-", stdin, owned=False)
    try:
        stream = open(name, "rb", buffering=0)
    except OSError as exc:
        raise _unreadable(name, exc) from None
    return LogSource(name, stream, owned=True)


def file_fingerprint(path, length: int = 65536) -> tuple[str, int]:
    """sha256 (hex) of the first ``min(size, length)`` raw bytes of ``path``, and that count."""
    data = _read_prefix(path, length)
    return hashlib.sha256(data).hexdigest(), len(data)


def prefix_fingerprint(path, covered: int) -> str:
    """sha256 (hex) of the first ``covered`` raw bytes of ``path`` (fewer if the file is shorter)."""
    return hashlib.sha256(_read_prefix(path, covered)).hexdigest()


# -- helpers ----------------------------------------------------------------------------------
def _unreadable(name: str, exc: OSError) -> InputError:
    return InputError(f"cannot read {name}: {exc.strerror or exc}; check the path and permissions")


def _read_prefix(path, length: int) -> bytes:
    with open(os.fspath(path), "rb") as f:
        return _read_at_least(f, length, limit=length)


def _read_at_least(stream, size: int, limit: int | None = None) -> bytes:
    """Read until ``size`` bytes or EOF (a pipe may return less per call); at most ``limit``."""
    parts = []
    total = 0
    while total < size:
        block = stream.read(max(size - total, IN_BLOCK) if limit is None else limit - total)
        if not block:
            break
        parts.append(block)
        total += len(block)
    return b"".join(parts)


def _split_lines(blocks: Iterator[bytes], state: StreamState) -> Iterator[list[str]]:
    """Cut byte blocks into decoded lines; ``TOO_LONG`` stands for each over-long line."""
    for part in _split_raw(blocks, state):
        yield decode_part(part)


def _split_raw(blocks: Iterator[bytes], state: StreamState) -> Iterator[bytes | str]:
    """Cut byte blocks at newlines: parts of whole lines, or ``TOO_LONG`` for an over-long line
    (skipped without holding more than a block in memory)."""
    limit = MAX_LINE_BYTES
    pending = b""
    skipping = False
    for block in blocks:
        if skipping:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            skipping = False
            block = block[cut + 1 :]
            if not block:
                continue
        data = pending + block if pending else block
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) > limit:
                pending, skipping = b"", True
                yield TOO_LONG
            else:
                pending = data
            continue
        yield data[:cut]
        pending = data[cut + 1 :]
        if len(pending) > limit:
            pending, skipping = b"", True
            yield TOO_LONG
    if pending and not state.incomplete:
        yield pending


def _decode(data: bytes, end: int) -> list[str]:
    """Lines of ``data[:end]`` (which ends just before a newline), decoded, without ``\\r``."""
    view = memoryview(data)[:end]
    text = str(view, "utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
    lines = text.split("\n")
    if end > MAX_LINE_BYTES and max(map(len, lines)) > _CHARS_CHECK:
        raw = bytes(view).split(b"\n")
        for i, line in enumerate(lines):
            if len(line) > _CHARS_CHECK and len(raw[i].rstrip(b"\r")) > MAX_LINE_BYTES:
                lines[i] = TOO_LONG
    return lines
