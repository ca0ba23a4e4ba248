"""The pretable's two file forms, written in one streaming pass.

The TSV (:mod:`.tsv`: SciELO's ``mysql --batch`` convention, which the COUNTER step reads) and its
Parquet twin with the same columns (:mod:`.schema`) typed as analysts want (timestamp, float).
Both are written to temporary names and renamed at the end, so a crash never leaves a
half-written pretable where the next stage would read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .schema import COLUMNS, Row, parquet_schema
from .tsv import tsv_lines

BATCH_ROWS = 50_000  # Parquet row group size; bounds memory whatever the day's size


class PretableWriter:
    """Streams rows into ``<day>.tsv`` and ``<day>.parquet``; ``commit()`` publishes both."""

    def __init__(self, tsv_path: Path, parquet_path: Path) -> None:
        import pyarrow.parquet as pq  # here, not at import: the COUNTER step reads pretables without it

        self._schema = parquet_schema()
        self.tsv_path, self.parquet_path = Path(tsv_path), Path(parquet_path)
        self.tsv_path.parent.mkdir(parents=True, exist_ok=True)
        suffix = f".tmp-{os.getpid()}"
        self._tsv_tmp = self.tsv_path.with_name(self.tsv_path.name + suffix)
        self._pq_tmp = self.parquet_path.with_name(self.parquet_path.name + suffix)
        self._tsv = open(self._tsv_tmp, "wb")
        self._tsv.write(("\t".join(COLUMNS) + "\n").encode("utf-8"))
        self._pq = pq.ParquetWriter(self._pq_tmp, self._schema, compression="zstd")
        self._batch: list[Row] = []
        self.rows = 0

    def write(self, row: Row) -> None:
        """One row (the ``matomo_db`` source); rows are written a batch at a time."""
        self._batch.append(row)
        if len(self._batch) >= BATCH_ROWS:
            self._flush()

    def write_many(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self.write(row)

    def write_table(self, table) -> None:
        """A table of :func:`~.schema.parquet_schema` rows, in both forms."""
        if not table.num_rows:
            return
        self._pq.write_table(table, row_group_size=BATCH_ROWS)
        self._tsv.write(tsv_lines(table))
        self.rows += table.num_rows

    def _flush(self) -> None:
        if not self._batch:
            return
        import pyarrow as pa

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
        self._batch = []
        self.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

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
