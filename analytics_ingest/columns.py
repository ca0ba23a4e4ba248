"""Python work once per distinct value of an Arrow column, not once per row.

The later stages apply rules that only Python has (Matomo's URL rules, DeviceDetector, salted
hashes) to columns of a million rows in which agents, addresses and URLs repeat. Dictionary
encoding gives the distinct values and, per row, an index into them: the rule runs once per
distinct value and ``take`` spreads its answers back over the rows, in C.
"""

from __future__ import annotations

from typing import Callable


def encoded(column):
    """``column`` (an Array or ChunkedArray) as one DictionaryArray."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    return column


def per_value(column, fn: Callable, types: list, cache: dict | None = None) -> list:
    """Arrays (one per type in ``types``) holding ``fn(value)`` for every row of ``column``:
    ``fn`` returns a tuple of that many items and runs once per distinct value (and once per value
    over the calls sharing ``cache``). A null row gives nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = encoded(column)
    dictionary = column.dictionary.to_pylist()
    # A filtered column keeps its whole dictionary: ask only about the values its rows still use
    # (the rule may be DeviceDetector or a database lookup).
    used = set(pc.unique(column.indices).drop_null().to_pylist()) if len(column) else set()
    found = []
    append = found.append
    get = cache.get if cache is not None else None
    for position, value in enumerate(dictionary):
        if position not in used:
            append(None)
            continue
        answer = get(value) if get is not None else None
        if answer is None:
            answer = fn(value)
            if cache is not None:
                if len(cache) >= 200_000:  # memory stays flat on days of unique values
                    cache.clear()
                cache[value] = answer
        append(answer)
    indices = column.indices
    return [pa.array([None if a is None else a[i] for a in found], type).take(indices)
            for i, type in enumerate(types)]
