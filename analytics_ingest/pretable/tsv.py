"""The pretable's TSV form: SciELO's convention, written and read here (and by the COUNTER step).

SciELO's pretables were ``mysql --batch`` output (``mysql -e ... > day.tsv``): tab-separated, a
header row, the literal ``NULL`` for a missing value, and inside a value ``\\t``, ``\\n``,
``\\r``, ``\\0`` and ``\\\\`` for tab, newline, carriage return, NUL and backslash. :func:`tsv_value`
escapes that way and :func:`read_pretable_tsv` unescapes, so ours and theirs read alike and a
table survives a round trip.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .schema import COLUMNS

NULL = "NULL"
_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}
_ESCAPE_TABLE = str.maketrans(_ESCAPES)
_NEEDS_ESCAPE_PATTERN = r"[\\\t\n\r\x00]"
_NEEDS_ESCAPE = re.compile(_NEEDS_ESCAPE_PATTERN).search
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "0": "\0"}


def tsv_value(value) -> str:
    """One cell as written: ``NULL`` for None, else its text with ``mysql --batch``'s escapes."""
    if value is None:
        return NULL
    text = value if isinstance(value, str) else str(value)
    # One C-level regex search per cell: this runs for every cell of a pretable (millions a day),
    # and almost no value needs escaping.
    if _NEEDS_ESCAPE(text) is not None:
        text = text.translate(_ESCAPE_TABLE)
    return text


def tsv_lines(table) -> bytes:
    """The rows of ``table`` as UTF-8 TSV lines (each ending in a newline), cells as
    :func:`tsv_value` writes them: formatted once per distinct value of a column, joined in Arrow.
    Times are ``YYYY-MM-DD HH:MM:SS``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..columns import per_value

    cells = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type):
            # as text without the zone: "YYYY-MM-DD HH:MM:SS"
            text = column.cast(pa.timestamp("s")).cast(pa.string())
        elif pa.types.is_string(column.type) or pa.types.is_dictionary(column.type):
            text = column.cast(pa.string())
            if pc.any(pc.match_substring_regex(text, _NEEDS_ESCAPE_PATTERN)).as_py():
                for char, escaped in _ESCAPES.items():  # backslash first, as str.translate would
                    text = pc.replace_substring(text, char, escaped)
        else:  # numbers: Python's own text for them, once per distinct value of the batch (not cached
            # across batches: 0.0 == -0.0 would share an entry, and they are written apart)
            (text,) = per_value(column, lambda v: (tsv_value(v),), [pa.string()])
        cells.append(pc.fill_null(text, NULL))
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*cells, "\t"), pa.scalar(""), "\n")
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if not len(lines):
        return b""
    # The lines lie end to end in the array's data buffer: hand that span over as it is.
    lines = lines.cast(pa.large_string())
    _validity, offsets, data = lines.buffers()
    ends = np.frombuffer(offsets, dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    return data.slice(int(ends[0]), int(ends[-1] - ends[0])).to_pybytes()


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
