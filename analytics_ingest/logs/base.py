"""What every line parser shares: the parser interface, invalid reasons, small field helpers."""

from __future__ import annotations

from collections.abc import Callable

from ..hits import Hit
from .reader import TOO_LONG

# Returned by W3C-style parsers for "#..." header and comment lines (compare with ``is``).
SKIP_LINE: str = "".join(["<w3c ", "header line>"])

# Invalid reasons (short words; they end up in reports and the ledger).
UNPARSEABLE = "unparseable"
BAD_DATE = "bad_date"
BAD_STATUS = "bad_status"
LINE_TOO_LONG = "line_too_long"
EMPTY = "empty"


class LineParser:
    """Parses the lines of one log format.

    ``parse(line, line_no)`` returns a :class:`Hit`, :data:`SKIP_LINE`, or an invalid reason.
    Every parser sets ``self.parse`` to a closure in ``__init__`` (an attribute, not a method): a
    closure reads its precompiled regexes and caches as fast locals, which matters at a million
    lines per call site.
    """

    name: str = ""
    # How many Hit fields the format can fill: breaks ties in format detection.
    field_count: int = 0
    parse: Callable[[str, int], Hit | str]  # set by each parser's __init__

    def stepper(self, classifier, holder: list) -> Callable[[str, int], str]:
        """A function that parses *and classifies* one line, for :func:`scan`.

        It returns the line's category (a vocabulary word), :data:`SKIP_LINE` or an invalid
        reason. For PAGES, DOWNLOADS and FILTERED it also puts the :class:`Hit` in
        ``holder[0]``. A fast parser may override this to classify the raw fields and build a
        Hit only for those lines.
        """
        parse = self.parse
        classify = classifier.classify
        hit_type = Hit

        def step(line: str, line_no: int) -> str:
            result = parse(line, line_no)
            if result.__class__ is hit_type:
                holder[0] = result
                return classify(result)
            return result

        return step

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def invalid_reason(line: str) -> str:
    """Why a line that matched nothing is invalid."""
    if line is TOO_LONG:
        return LINE_TOO_LONG
    if not line.strip():
        return EMPTY
    return UNPARSEABLE


def dash(value: str | None) -> str:
    """Log placeholders (``-``, missing) → ``""``."""
    if value is None or value == "-":
        return ""
    return value


def to_length(value) -> int | None:
    """Response size; ``None`` for ``-`` / missing / not a number."""
    if value is None or value == "-" or value == "":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        try:
            n = int(float(value))
        except (TypeError, ValueError, OverflowError):
            return None
    return n if n >= 0 else None


def to_status(value) -> int | None:
    """HTTP status as int; ``None`` when it is not a plausible status (→ ``bad_status``)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return None
    return n if 0 <= n <= 999 else None


def seconds_to_ms(value) -> int | None:
    """A duration in (fractional) seconds → whole milliseconds; ``None`` if absent or negative."""
    return _scaled(value, 1000.0)


def millis_to_ms(value) -> int | None:
    return _scaled(value, 1.0)


def micros_to_ms(value) -> int | None:
    return _scaled(value, 0.001)


def _scaled(value, factor: float) -> int | None:
    if value is None or value == "-" or value == "":
        return None
    try:
        x = float(value) * factor
    except (TypeError, ValueError):
        return None
    if x != x or x < 0 or x > 1e12:  # NaN, "-1" (AWS: no backend), absurd
        return None
    return int(x)
