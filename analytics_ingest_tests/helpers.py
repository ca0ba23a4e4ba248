"""Shared test helpers: generated logs, settings pointing at a fake Matomo."""

from __future__ import annotations

import json
from pathlib import Path

from analytics_ingest_tests import gen_logs

TOKEN = "t0ken-Sekr3t-9f1c"  # searched for in every output by the leak test
SITES = {1: {"name": "Demo", "main_url": "https://example.org", "timezone": "UTC"},
         2: {"name": "Paris", "main_url": "https://fr.example.org", "timezone": "Europe/Paris"}}


def make_log(path: Path, lines: int, seed: int = 7, **kw) -> dict:
    """Write a generated combined-format log; return its manifest (expected counts)."""
    return gen_logs.generate(str(path), lines, seed=seed, **kw)


def load_manifest(path: Path) -> dict:
    return json.loads(Path(str(path) + ".manifest.json").read_text())


# --- the ledger, through its public methods only ----------------------------------------------
def expected_files_on(ledger, site_id: int, day) -> int:
    """The number of files the ledger expects for the site's ``day`` (its ``set_expected_files``
    ranges, else the default), as the day's status records it: this writes the day's row."""
    ledger.recompute_day_status(site_id, day)
    return next(r.expected for r in ledger.day_statuses(site_id, since=day) if r.day == day)


def put_day_at(ledger, site_id: int, day, status: str) -> None:
    """Put the day at ``status`` whatever its files say (a test's starting point): counts from its
    files, then the stage, through the one guarded move the engine uses (``advance_day``)."""
    from analytics_ingest.vocabulary import DAY_STATUSES

    ledger.recompute_day_status(site_id, day, force=True)
    if not ledger.advance_day(site_id, day, status, after=DAY_STATUSES):
        raise AssertionError(f"day {day} of site {site_id} could not be put at {status}")
