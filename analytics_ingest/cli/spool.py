"""Copy a stream (stdin, a FIFO, a ``<(…)`` pipe, a device) to a file the importer can use.

The importer needs a regular file: it reads the first 64 KiB to recognise the content, then the
whole file, and a rerun resumes where an interrupted run stopped. A pipe can be read only once,
so its bytes are first copied to ``<home>/spool/stdin-<sha256 prefix>.log``. The name comes from
the content: a rerun with the same input finds the same file, and the ledger its progress.

Access logs hold IP addresses: the copy is readable by its owner only (0600, in a 0700 folder),
and is removed once its import is loaded (:func:`discard`); an incomplete import keeps it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

SPOOL_DIR = "spool"
_BLOCK = 1 << 20


def is_stream(path: str) -> bool:
    """True for ``-`` and for every path that is not a regular file once symlinks are followed
    (FIFOs, /dev/fd pipes, character devices, sockets); ``os.stat`` errors propagate."""
    return path == "-" or not stat.S_ISREG(os.stat(path).st_mode)


def spool_dir(settings) -> Path:
    """``<home>/spool``, created owner-only (0700) whatever the umask."""
    folder = Path(settings.home) / SPOOL_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def spool(stream: BinaryIO, settings) -> Path:
    """Copy ``stream`` to end of input into the spool folder; the file named by its content.

    Raises :class:`InputError` (one line) when the stream cannot be read or the copy written;
    an interrupted copy leaves nothing behind.
    """
    try:
        folder = spool_dir(settings)
    except OSError as exc:
        raise InputError(f"cannot create the spool folder under {settings.home}: {exc.strerror or exc}; "
                         "check the permissions of the state directory") from None
    tmp = folder / f".stdin-{os.getpid()}-{secrets.token_hex(4)}"
    digest = hashlib.sha256()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)  # the mode of os.open is filtered by the umask; this is not
        with os.fdopen(fd, "wb") as out:
            while True:
                try:
                    block = stream.read(_BLOCK)
                except OSError as exc:
                    raise InputError(f"cannot read the input: {exc.strerror or exc}") from None
                if not block:
                    break
                digest.update(block)
                out.write(block)
        final = folder / f"stdin-{digest.hexdigest()[:16]}.log"
        os.replace(tmp, final)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the spooled copy in {folder}: {exc.strerror or exc}; "
                         "check free space and permissions") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def discard(path: str | os.PathLike) -> None:
    """Remove a spooled copy whose import is loaded (a rerun of the same input re-spools it)."""
    Path(path).unlink(missing_ok=True)
