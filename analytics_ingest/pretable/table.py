"""The pretable's columns and its two file forms, written in one streaming pass.

SciELO's TSV: header row, tab-separated, the literal ``NULL`` for a missing value, ``serverTime``
as ``YYYY-MM-DD HH:MM:SS`` (UTC, Matomo's ``server_time``), and ``mysql --batch``'s backslash
escapes inside values (SciELO wrote pretables with ``mysql -e``), so the COUNTER step's reader
(:func:`analytics_ingest.counter.output.read_pretable_tsv`) reads both theirs and ours. The
Parquet twin has the same columns with types analysts want (timestamp, float). Both are written
to temporary names and renamed at the end, so a crash never leaves a half-written pretable where
the next stage would read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from ..counter.output import read_pretable_tsv, tsv_value  # noqa: F401 - one TSV convention, re-exported

COLUMNS = ("serverTime", "browserName", "browserVersion", "ip", "latitude", "longitude", "actionName")
BATCH_ROWS = 50_000  # Parquet row group size; bounds memory whatever the day's size

SCHEMA = pa.schema([
    ("serverTime", pa.timestamp("s", tz="UTC")),
    ("browserName", pa.string()),
    ("browserVersion", pa.string()),
    ("ip", pa.string()),
    ("latitude", pa.float64()),
    ("longitude", pa.float64()),
    ("actionName", pa.string()),
])

# A row: (serverTime text, browserName, browserVersion, ip, latitude, longitude, actionName),
# None for missing values.
Row = tuple


class PretableWriter:
    """Streams rows into ``<day>.tsv`` and ``<day>.parquet``; ``commit()`` publishes both."""

    def __init__(self, tsv_path: Path, parquet_path: Path) -> None:
        self.tsv_path, self.parquet_path = Path(tsv_path), Path(parquet_path)
        self.tsv_path.parent.mkdir(parents=True, exist_ok=True)
        suffix = f".tmp-{os.getpid()}"
        self._tsv_tmp = self.tsv_path.with_name(self.tsv_path.name + suffix)
        self._pq_tmp = self.parquet_path.with_name(self.parquet_path.name + suffix)
        self._tsv = open(self._tsv_tmp, "w", encoding="utf-8", newline="\n")
        self._tsv.write("\t".join(COLUMNS) + "\n")
        self._pq = pq.ParquetWriter(self._pq_tmp, SCHEMA, compression="zstd")
        self._batch: list[Row] = []
        self.rows = 0

    def write(self, row: Row) -> None:
        self._tsv.write("\t".join(map(tsv_value, row)) + "\n")
        self._batch.append(row)
        self.rows += 1
        if len(self._batch) >= BATCH_ROWS:
            self._flush()

    def write_many(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.write(row)

    def _flush(self) -> None:
        if not self._batch:
            return
        cols = list(zip(*self._batch))
        arrays = [
            # naive text in UTC: parse as timezone-less, then label it UTC (no shift)
            pa.array(cols[0], pa.string()).cast(pa.timestamp("s")).cast(pa.timestamp("s", tz="UTC")),
            pa.array(cols[1], pa.string()),
            pa.array(cols[2], pa.string()),
            pa.array(cols[3], pa.string()),
            pa.array([None if v is None else float(v) for v in cols[4]], pa.float64()),
            pa.array([None if v is None else float(v) for v in cols[5]], pa.float64()),
            pa.array(cols[6], pa.string()),
        ]
        self._pq.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA))
        self._batch = []

    def commit(self) -> None:
        self._flush()
        self._tsv.close()
        self._pq.close()
        os.replace(self._tsv_tmp, self.tsv_path)
        os.replace(self._pq_tmp, self.parquet_path)

    def abort(self) -> None:
        for closer in (self._tsv.close, self._pq.close):
            try:
                closer()
            except Exception:  # noqa: BLE001 - cleaning up after a failure already being raised
                pass
        for tmp in (self._tsv_tmp, self._pq_tmp):
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> "PretableWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
