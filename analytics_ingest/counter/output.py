"""COUNTER tables out (TSV and Parquet), every file written atomically; pretable TSVs too.

TSV conventions are the pretable's (SciELO's ``mysql --batch`` output, :mod:`analytics_ingest.pretable.tsv`):
tab-separated, a header row, ``NULL`` for a missing value, backslash escapes inside values. The
pretable's reader and columns live with the pretable; they are re-exported here for the callers
that know them from this module.

Atomic: each file is written to a hidden temporary file in the target folder, flushed to disk,
then renamed over the target, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

from ..atomic import atomic_file
from ..pretable.schema import COLUMNS
from ..pretable.tsv import NULL, MalformedLine, read_pretable_tsv, tsv_value
from .metrics import ITEM_COLUMNS, ITEM_METRICS, TITLE_COLUMNS, TITLE_METRICS, CounterResult

__all__ = [
    "COLUMNS", "NULL", "MalformedLine", "read_pretable_tsv", "tsv_value", "write_items_parquet", "write_items_tsv",
    "write_pretable_tsv", "write_result", "write_titles_parquet", "write_titles_tsv", "write_tsv",
]


# -- writing -------------------------------------------------------------------------------------
def write_tsv(path: str | os.PathLike, columns: Iterable[str], rows: Iterable[Iterable]) -> Path:
    """Write ``rows`` under the header ``columns`` as TSV, atomically. None is ``NULL``."""
    columns = list(columns)

    def fill(out) -> None:
        out.write("\t".join(columns) + "\n")
        for row in rows:
            out.write("\t".join(tsv_value(v) for v in row) + "\n")

    return _atomic(path, fill, mode="w")


def write_pretable_tsv(path: str | os.PathLike, rows: Iterable[Iterable]) -> Path:
    """A pretable TSV (SciELO's 7 columns) from 7-tuples, atomically."""
    return write_tsv(path, COLUMNS, rows)


def write_items_tsv(result: CounterResult, path: str | os.PathLike) -> Path:
    return write_tsv(path, ITEM_COLUMNS, (r.values() for r in result.items))


def write_titles_tsv(result: CounterResult, path: str | os.PathLike) -> Path:
    return write_tsv(path, TITLE_COLUMNS, (r.values() for r in result.titles))


def write_items_parquet(result: CounterResult, path: str | os.PathLike) -> Path:
    """The item table as Parquet: ``date`` date32, ``item``/``title`` string, metrics int64."""
    return _write_parquet(path, ITEM_COLUMNS, ITEM_METRICS, [r.values() for r in result.items])


def write_titles_parquet(result: CounterResult, path: str | os.PathLike) -> Path:
    return _write_parquet(path, TITLE_COLUMNS, TITLE_METRICS, [r.values() for r in result.titles])


def write_result(result: CounterResult, directory: str | os.PathLike, stem: str,
                 formats: Iterable[str] = ("tsv", "parquet")) -> dict[str, Path]:
    """Both tables in each format: ``<stem>-items.tsv``, ``<stem>-titles.parquet``, ...

    Returns ``{"items.tsv": path, ...}``.
    """
    directory = Path(directory)
    writers = {
        "tsv": (write_items_tsv, write_titles_tsv),
        "parquet": (write_items_parquet, write_titles_parquet),
    }
    written = {}
    for fmt in formats:
        if fmt not in writers:
            raise ValueError(f"unknown format {fmt!r}; use tsv or parquet")
        items_writer, titles_writer = writers[fmt]
        written[f"items.{fmt}"] = items_writer(result, directory / f"{stem}-items.{fmt}")
        written[f"titles.{fmt}"] = titles_writer(result, directory / f"{stem}-titles.{fmt}")
    return written


def _write_parquet(path, columns, metrics, rows: list[tuple]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = []
    for name in columns:
        if name == "date":
            fields.append(pa.field(name, pa.date32(), nullable=False))
        elif name in metrics:
            fields.append(pa.field(name, pa.int64(), nullable=False))
        else:
            fields.append(pa.field(name, pa.string(), nullable=(name == "title" and "item" in columns)))
    schema = pa.schema(fields)
    data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    data["date"] = [dt.date.fromisoformat(d) for d in data["date"]]
    table = pa.Table.from_pydict(data, schema=schema)
    return _atomic(path, lambda out: pq.write_table(table, out), mode="wb")


def _atomic(path, fill, mode: str) -> Path:
    with atomic_file(path, mode) as out:
        fill(out)
    return Path(path)


