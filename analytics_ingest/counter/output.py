"""Pretable TSV in, COUNTER tables out (TSV and Parquet), every file written atomically.

TSV conventions (SciELO's, i.e. ``mysql --batch`` output): tab-separated, a header row, the
literal ``NULL`` for a missing value, and inside a value ``\\t``, ``\\n``, ``\\r``, ``\\0`` and
``\\\\`` for tab, newline, carriage return, NUL and backslash. The writers escape that way and
:func:`read_pretable_tsv` unescapes, so a table survives a round trip.

Atomic: each file is written to a hidden temporary file in the target folder, flushed to disk,
then renamed over the target, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_file
from ..errors import InputError
from .metrics import COLUMNS, ITEM_COLUMNS, ITEM_METRICS, TITLE_COLUMNS, TITLE_METRICS, CounterResult

NULL = "NULL"
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r\0]").search
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "0": "\0"}


# -- reading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MalformedLine:
    """A pretable line that is not a row (too few fields); not a tuple, so it counts as invalid."""

    number: int  # 1 = the header
    text: str


def read_pretable_tsv(path: str | os.PathLike, *, unescape: bool = True) -> Iterator[tuple]:
    """Rows of a SciELO pretable TSV file as 7-tuples in :data:`COLUMNS` order, streamed.

    ``unescape``: undo ``mysql --batch``'s backslash escapes (SciELO's pretables were written by
    ``mysql -e ... > day.tsv``, and :mod:`analytics_ingest.pretable` writes the same way). Pass
    False only for a file whose writer did not escape, so a literal backslash stays as it is.

    The header names the columns (any order; extra columns are ignored). ``NULL`` becomes None;
    latitude and longitude become floats (None when not numbers). A line with fewer fields than the
    header is yielded as a :class:`MalformedLine`, which
    :func:`~analytics_ingest.counter.metrics.compute` counts as invalid; it does not stop the
    reading. Gzip-compressed files are read too; a UTF-8 byte-order mark is skipped.

    Raises :class:`InputError` when the file cannot be opened or has no valid header.
    """
    path = Path(path)
    try:
        with open(path, "rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"
        src = (gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="\n") if gz
               else open(path, encoding="utf-8-sig", errors="replace", newline="\n"))
    except OSError as exc:
        raise InputError(f"cannot read pretable {path}: {exc.strerror or exc}") from None
    with src:
        header = src.readline().rstrip("\r\n").split("\t")
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InputError(f"pretable {path} has no valid header (missing {', '.join(missing)}); its first line "
                             f"must name the columns {', '.join(COLUMNS)}, tab-separated")
        positions = [header.index(c) for c in COLUMNS]
        width = len(header)
        lat, lon = COLUMNS.index("latitude"), COLUMNS.index("longitude")
        cell = _cell if unescape else _plain_cell
        for number, line in enumerate(src, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) < width:
                yield MalformedLine(number, line)
                continue
            row = [cell(fields[p]) for p in positions]
            row[lat], row[lon] = _float(row[lat]), _float(row[lon])
            yield tuple(row)


def _plain_cell(text: str) -> str | None:
    return None if text == NULL else text


def _cell(text: str) -> str | None:
    if text == NULL:
        return None
    if "\\" not in text:
        return text
    out, chars, i = [], text, 0
    while i < len(chars):
        c = chars[i]
        if c == "\\" and i + 1 < len(chars) and chars[i + 1] in _UNESCAPES:
            out.append(_UNESCAPES[chars[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


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


def tsv_value(value) -> str:
    if value is None:
        return NULL
    text = value if isinstance(value, str) else str(value)
    # One C-level regex search per cell: this runs for every cell of a pretable (millions a day),
    # and almost no value needs escaping.
    if _NEEDS_ESCAPE(text) is not None:
        text = text.translate(_ESCAPE_TABLE)
    return text


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


