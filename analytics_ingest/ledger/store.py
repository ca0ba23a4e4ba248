"""The ledger: what was imported, how far each lane got, and the state of each day.

One :class:`Ledger` wraps one SQLAlchemy engine (SQLite, PostgreSQL or MariaDB/MySQL) and is safe
to share between threads: every thread gets its own connection, kept for the thread's lifetime
(returned to the pool when the thread ends), so the per-batch checkpoint write
(:meth:`Ledger.mark_in_flight`) costs one short transaction and no pool round trip.

Every method is one transaction. Times are UTC: stored naive, returned aware.

The class is composed of one mixin per capability, each in its own module:

* :mod:`.base` -- the database, per-thread connections, transactions with retries, dialects;
* :mod:`.files` -- contents by head and fingerprint, paths, file records, the days they cover;
* :mod:`.leases` -- one import per file at a time, with a fencing token;
* :mod:`.lanes` -- per-lane checkpoints (the hot path) and rejected lines;
* :mod:`.summaries` -- one summary row per import attempt;
* :mod:`.days` -- expected files per day, day status and its stages;
* :mod:`.archives` -- last delivery and last Matomo archive per day;
* :mod:`.site_writers` -- one Matomo writer per site.
"""

from __future__ import annotations

from .archives import Archives
from .base import OUTBOX_DESTINATION, LedgerBase
from .days import DEFAULT_EXPECTED_FILES, LATER_DAY_STAGES, Days
from .files import ContentTaken, Files
from .lanes import Lanes
from .leases import Leases
from .records import DayRecord, FileRecord
from .site_writers import SiteWriters
from .summaries import Summaries


class Ledger(Files, Leases, Lanes, Summaries, Days, Archives, SiteWriters, LedgerBase):
    """Control tables for exactly-once imports (see the module docstring)."""


__all__ = ["Ledger", "ContentTaken", "OUTBOX_DESTINATION", "FileRecord", "DayRecord", "DEFAULT_EXPECTED_FILES", "LATER_DAY_STAGES"]
