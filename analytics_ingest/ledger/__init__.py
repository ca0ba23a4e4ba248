"""The ledger: control tables for exactly-once imports (files, leases, lane checkpoints, summaries,
expected files per day, day status), on SQLite, PostgreSQL or MariaDB/MySQL."""

from .store import (
    DEFAULT_EXPECTED_FILES,
    LATER_DAY_STAGES,
    OUTBOX_DESTINATION,
    ContentTaken,
    DayRecord,
    FileRecord,
    Ledger,
)

__all__ = ["Ledger", "ContentTaken", "OUTBOX_DESTINATION", "FileRecord", "DayRecord", "DEFAULT_EXPECTED_FILES",
           "LATER_DAY_STAGES"]
