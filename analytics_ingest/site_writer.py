"""One Matomo writer per site at a time, whoever starts it: a Dagster run, the CLI, a cron job.

Why a lock and not only a Dagster pool: Matomo creates a site's per-day fingerprint salt with the
first hit of a day, and two writers of one site that reach a new day together can both create it,
so one visitor becomes two visits (docs/exactly_once.md). Inside one import the lanes' ``DayGate``
orders that; between two imports of the same site only this lock does, and it must hold for an
``analytics-ingest import`` typed while a backfill runs, which no Dagster setting can see. The
archiver is a writer too: re-archiving a day while hits still arrive archives half of them.

The lock is a ledger row per (destination, site): an owner, what it is doing (shown to whoever
waits) and an expiry that a thread renews. A killed holder stops renewing and the lock expires
after the TTL; a holder on this machine that is gone is recognised at once. Throughput across
sites is Dagster's business (the ``matomo`` pool).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Callable, Iterator

from .errors import IngestError
from .owners import gone_local, new_owner

log = logging.getLogger(__name__)

SITE_WRITER_TTL = 60.0  # seconds without a renewal before another writer may take the site
_POLL_SECONDS = 0.5
_held = threading.local()  # (destination, site) pairs this thread holds: nested takes are free


class SiteBusy(IngestError):
    """Another writer holds the site and did not finish within the wait."""


class _Renewer(threading.Thread):
    def __init__(self, ledger, site_id: int, owner: str, ttl: float) -> None:
        super().__init__(name=f"site-writer-{site_id}", daemon=True)
        self.ledger, self.site_id, self.owner, self.ttl = ledger, site_id, owner, ttl
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.ttl / 4):
            try:
                if not self.ledger.renew_site_writer(self.site_id, self.owner, self.ttl):
                    # Taken over after we could not renew (frozen, ledger away). The files' own
                    # fenced leases still keep every hit single; say it, do not stop the work.
                    log.warning("site %s: the writer lock was taken over by another writer", self.site_id)
                    return
            except Exception:  # noqa: BLE001 - a passing ledger hiccup; the next renewal may work
                continue


@contextlib.contextmanager
def site_writer(ledger, site_id: int, what: str, *, wait: float | None = None, ttl: float = SITE_WRITER_TTL,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the site's writer lock for the block. ``what`` says what the holder does ("import of
    access.log"); ``wait``: seconds to wait for another holder (None: as long as it takes), then
    :class:`SiteBusy`. ``on_wait`` receives one line when waiting starts (default: a log warning)."""
    key = (ledger.destination, int(site_id))
    held = getattr(_held, "keys", None)
    if held is None:
        held = _held.keys = set()
    if key in held:  # e.g. a replay that imports and then archives inside one writer block
        yield
        return
    owner = new_owner()
    deadline = None if wait is None else time.monotonic() + wait
    said = False
    while not ledger.acquire_site_writer(site_id, owner, what, ttl):
        holder = ledger.site_writer(site_id)
        if holder is not None and gone_local(holder.owner):
            ledger.release_site_writer(site_id, holder.owner)  # atomic if two waiters race here
            continue
        doing = f"{holder.what} by {holder.owner} since {holder.since:%H:%M:%S} UTC" if holder else "another writer"
        if deadline is not None and time.monotonic() >= deadline:
            raise SiteBusy(f"site {site_id} is being written to by another writer ({doing}); wait for it to finish "
                           "or use --wait SECONDS")
        if not said:
            (on_wait or log.warning)(f"site {site_id}: waiting for the other Matomo writer to finish ({doing})")
            said = True
        time.sleep(_POLL_SECONDS)
    renewer = _Renewer(ledger, int(site_id), owner, ttl)
    renewer.start()
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        renewer.done.set()
        renewer.join()
        ledger.release_site_writer(site_id, owner)
