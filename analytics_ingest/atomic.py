"""Files published whole: a reader sees the old content or the new, never half of it.

Every table, journal index, cursor and cache this project writes goes through here: written to a
hidden temporary file in the target's folder, flushed to disk, renamed over the target, and the
rename itself made durable. A crash leaves the old file and a stray ``.name.*.tmp`` at worst.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

PUBLISHED_MODE = 0o644  # mkstemp's 0600 would make a published table unreadable to others


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", *, perm: int = PUBLISHED_MODE) -> Iterator[IO]:
    """Open a temporary file to fill; on a clean exit it replaces ``path``; on an error it is removed.

    Text mode is UTF-8 with no newline translation (CSV/TSV writers choose their own line ends).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, perm)
        kwargs = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes, *, perm: int = PUBLISHED_MODE) -> Path:
    with atomic_file(path, "wb", perm=perm) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, perm: int = PUBLISHED_MODE) -> Path:
    with atomic_file(path, "w", perm=perm) as handle:
        handle.write(text)
    return Path(path)


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename in ``directory`` durable (best effort: some file systems refuse)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
