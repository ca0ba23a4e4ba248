"""Who holds a lease or a lock: ``host:pid:nonce``, and whether such a holder on this host is gone.

One spelling for the file leases (:mod:`analytics_ingest.weblogs.importer`) and the site writer
lock (:mod:`analytics_ingest.site_writer`), so a rerun after ``kill -9`` takes either over at
once instead of waiting out a TTL.
"""

from __future__ import annotations

import os
import socket
import uuid


def new_owner() -> str:
    """A holder name unique to this take: the host, this process and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def gone_local(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs. A holder in this
    process (another thread) or on another host is never presumed gone: only its TTL says so."""
    parts = owner.split(":")
    if len(parts) < 3 or ":".join(parts[:-2]) != socket.gethostname():
        return False
    try:
        pid = int(parts[-2])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
