"""The day each visitor of a site was first seen, so new vs returning needs no raw hits.

A visitor is *new* in a window when its first day is inside the window (it is absent from every
earlier day's aggregate), *returning* otherwise — memex's ``new users`` (users seen in range minus
users seen before range start), over our day aggregates.

``<home>/usage/<site_key>/first_seen.parquet`` holds (vid, first day) sorted by vid, plus, in its
metadata, the (size, mtime) of every day aggregate it was made from. Kept correct cheaply:

* days added since (any date, even earlier ones): merged in by taking the minimum day per visitor;
* a day rebuilt (size or mtime changed) or deleted: a visitor may have *left* that day, which a
  minimum cannot undo, so the index is rebuilt from all day aggregates (visitor column only).

Checking costs one ``stat`` per day file. Written atomically; two reports racing both write a
correct index, the last one stays.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_file
from .store import read_day, usage_dir

INDEX_NAME = "first_seen.parquet"
_EPOCH = dt.date(1970, 1, 1)
_META = b"first_seen"


def _day_files(directory: Path) -> dict[str, tuple[int, int]]:
    """``{day: (size, mtime_ns)}`` of the day aggregates in ``directory``."""
    found = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return found
    for entry in entries:
        name = entry.name
        if len(name) == 18 and name.endswith(".parquet") and name[4] == "-" and name[7] == "-":
            st = entry.stat()
            found[name[:10]] = (st.st_size, st.st_mtime_ns)
    return found


def _min_per_vid(vids: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique vids (sorted) with the smallest day each."""
    if len(vids) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    order = np.lexsort((days, vids))
    vids, days = vids[order], days[order]
    first = np.ones(len(vids), dtype=bool)
    first[1:] = vids[1:] != vids[:-1]
    return vids[first], days[first]


def _read_days(directory: Path, names) -> tuple[np.ndarray, np.ndarray]:
    chunks_v, chunks_d = [], []
    for name in names:
        agg = read_day(directory / f"{name}.parquet", tables=False)
        chunks_v.append(agg.vids)
        chunks_d.append(np.full(len(agg.vids), (agg.day - _EPOCH).days, dtype=np.int32))
    if not chunks_v:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    return np.concatenate(chunks_v), np.concatenate(chunks_d)


class FirstSeen:
    """Sorted visitor ids with their first day (days since 1970-01-01)."""

    def __init__(self, vids: np.ndarray, days: np.ndarray, rebuilt: bool = False) -> None:
        self.vids, self.days, self.rebuilt = vids, days, rebuilt

    def first_days(self, vids: np.ndarray) -> np.ndarray:
        """First day (days since epoch) of each of ``vids``; a vid not indexed gets a huge day."""
        out = np.full(len(vids), np.iinfo(np.int32).max, dtype=np.int32)
        if len(self.vids) == 0:
            return out
        pos = np.minimum(np.searchsorted(self.vids, vids), len(self.vids) - 1)
        found = self.vids[pos] == vids
        out[found] = self.days[pos[found]]
        return out


def day_number(day: dt.date) -> int:
    return (day - _EPOCH).days


def load_first_seen(settings, site) -> FirstSeen:
    """The site's first-seen index, brought up to date with its day aggregates."""
    directory = usage_dir(settings, site)
    path = directory / INDEX_NAME
    current = _day_files(directory)
    indexed: dict[str, list[int]] = {}
    vids = np.empty(0, np.int64)
    days = np.empty(0, np.int32)
    try:
        table = pq.read_table(path)
        indexed = json.loads((table.schema.metadata or {}).get(_META, b"{}"))
        vids = table.column("vid").to_numpy()
        days = table.column("day").to_numpy().astype(np.int32)
    except (FileNotFoundError, pa.ArrowInvalid, OSError, ValueError):
        indexed = {}
    changed = [d for d, sig in indexed.items() if tuple(sig) != current.get(d)]
    added = sorted(d for d in current if d not in indexed)
    if not changed and not added:
        return FirstSeen(vids, days)
    rebuilt = bool(changed) or not indexed
    if rebuilt:
        new_v, new_d = _read_days(directory, sorted(current))
    else:
        more_v, more_d = _read_days(directory, added)
        new_v, new_d = np.concatenate([vids, more_v]), np.concatenate([days, more_d])
    vids, days = _min_per_vid(new_v, new_d)
    _write(path, vids, days, current)
    return FirstSeen(vids, days, rebuilt=rebuilt)


def _write(path: Path, vids: np.ndarray, days: np.ndarray, sources: dict) -> None:
    table = pa.table({"vid": pa.array(vids, pa.int64()), "day": pa.array(days, pa.int32())})
    table = table.replace_schema_metadata({_META: json.dumps({d: list(s) for d, s in sources.items()})})
    with atomic_file(path, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")


__all__ = ["FirstSeen", "INDEX_NAME", "day_number", "load_first_seen"]
