"""Refuse input that is not a log of the given (or any known) format before importing it.

A file whose lines do not parse would otherwise be "imported" with every line invalid, end
loaded, and a rerun with the right ``--format`` would then say "already imported".
:func:`check_usable` reads the first lines (``sample_lines``, 1,000 by default) through the
same reader, format detection and parsers as the import, and raises
:class:`~analytics_ingest.errors.InputError` — like Matomo's ``import_logs.py``, which stops at
a file whose format it cannot guess — when none of them parses or more than
``max_invalid_share`` of them are invalid. Nothing is recorded: the file stays importable.

Blank lines and W3C ``#`` header lines are neither usable nor unusable: they do not count.
Lines that parse but are ignored (bots, static files, HTTP errors, filters) are usable.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import InputError
from ..vocabulary import INVALID
from ..weblogs.classify import ClassifyOptions
from .base import BAD_DATE, BAD_STATUS, EMPTY
from .formats import make_parser, resolve_name, wants_detection
from .reader import LogSource
from .scan import W3C_HEADER, scan
from .timeparse import DATE_OUT_OF_RANGE

SAMPLE_LINES = 1000
MAX_INVALID_SHARE = 0.5
# Raw bytes read at most, whatever ``sample_lines``: a file without newlines (zeros, a binary)
# must not be read to its end to find 1,000 lines.
SAMPLE_BYTES = 64 << 20
# When no format fits, the first lines are tried once more, one format at a time: a line of a
# known layout with an impossible field (all dates in 1970) makes a better message.
HINT_LINES = 50
_HINT_FORMATS = ("combined", "common", "common_complete", "common_vhost", "nginx_json", "elb", "alb")
_FIELD_REASONS = (DATE_OUT_OF_RANGE, BAD_DATE, BAD_STATUS)


@dataclass
class ProbeResult:
    """What the sample showed (the file was found usable)."""

    lines_read: int = 0  # lines of the sample (at most ``sample_lines``)
    format_name: str = ""  # the format given or detected; "" when no line was read
    invalid: int = 0  # invalid lines of the sample, blank lines included
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    whole_file: bool = False  # the sample is the whole file


def check_usable(
    path: str | os.PathLike,
    *,
    format_name: str | None = None,
    regex: str | None = None,
    date_format: str | None = None,
    classify: ClassifyOptions | None = None,
    sample_lines: int = SAMPLE_LINES,
    max_invalid_share: float = MAX_INVALID_SHARE,
) -> ProbeResult:
    """Parse the first ``sample_lines`` lines of ``path`` as the import would; InputError if unusable.

    Unusable: the sample has lines to judge and none of them parses, or more than
    ``max_invalid_share`` of them are invalid. An empty file is usable (nothing to import).
    Standard input (``"-"``) is not read (it could not be read again): the result is empty.
    """
    name = os.fspath(path)
    detect = wants_detection(format_name, regex)  # validates the format name first
    if name == "-":
        return ProbeResult()
    try:
        stream = open(name, "rb", buffering=0)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}; check the path and permissions") from None
    bounded = _Bounded(stream, SAMPLE_BYTES)
    with LogSource(name, bounded, owned=True) as source:
        head = _Head(source, sample_lines)
        stats = scan(head, format_name=format_name, regex=regex, date_format=date_format,
                     options=classify if classify is not None else ClassifyOptions())
    invalid = stats.counts[INVALID]
    whole = head.reached_end and not bounded.cut
    result = ProbeResult(lines_read=stats.lines_total, format_name=stats.format_name, invalid=invalid,
                         invalid_reasons=dict(stats.invalid_reasons), whole_file=whole)
    blank = stats.invalid_reasons.get(EMPTY, 0)
    judged = stats.lines_total - blank - stats.filtered_reasons.get(W3C_HEADER, 0)
    bad = invalid - blank
    if judged <= 0 or (bad < judged and bad <= max_invalid_share * judged):
        return result
    given = resolve_name(format_name) if regex is None else "regex"
    raise InputError(_message(name, stats, bad, whole, detect, given, head.first_lines))


def _message(name: str, stats, bad: int, whole: bool, detect: bool, given: str | None, first: list[str]) -> str:
    """One line: what is wrong with the sample, and which option to pass or check."""
    lines = stats.lines_total
    if lines == 1:
        counted, are, do = "its only line" if whole else "the first line", "is", "does"
    else:
        counted, are, do = f"{bad} of {'its' if whole else 'the first'} {lines} lines", "are", "do"
    example = next((s for s in stats.invalid_samples if s[1] != EMPTY), None)
    eg = f" (e.g. line {example[0]}: {example[1]})" if example is not None else ""
    if detect and not stats.format_name:
        return (f"{name}: cannot guess the log format ({counted} {do} not parse as any known format"
                f"{_closest(first)}); pass --format or --log-format-regex")
    if detect:
        return (f"{name}: {counted} {are} not in the detected {stats.format_name!r} format{eg}; "
                "pass --format or --log-format-regex")
    if given == "regex":
        return (f"{name}: {counted} {do} not match --log-format-regex{eg}; "
                "check --log-format-regex and --log-date-format")
    return f"{name}: {counted} {are} not in the {given!r} format{eg}; check --format"


def _closest(lines: list[str]) -> str:
    """``"; closest: 'combined', e.g. line 3: date_out_of_range"``, or "" when no format comes close."""
    best = None
    for name in _HINT_FORMATS:
        parse = make_parser(name, []).parse
        misses = [(number, reason) for number, line in enumerate(lines, 1)
                  if (reason := parse(line, number)) in _FIELD_REASONS]
        if misses and (best is None or len(misses) > len(best[1])):
            best = (name, misses)
    if best is None:
        return ""
    number, reason = best[1][0]
    return f"; closest: {best[0]!r}, e.g. line {number}: {reason}"


class _Bounded:
    """A raw binary stream that seems to end after ``limit`` bytes; ``cut`` if it did not really end."""

    def __init__(self, stream, limit: int) -> None:
        self._stream, self._left = stream, limit
        self.cut = False

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            self.cut = self.cut or bool(self._stream.read(1))
            return b""
        data = self._stream.read(self._left if size is None or size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def tell(self) -> int:
        return self._stream.tell()

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self._stream.close()


class _Head:
    """The first ``limit`` lines of a :class:`LogSource`, for :func:`scan`; stops reading there."""

    def __init__(self, source: LogSource, limit: int) -> None:
        self._source, self._limit = source, max(0, limit)
        self.reached_end = False
        self.first_lines: list[str] = []  # the first HINT_LINES lines

    def __getattr__(self, name):  # compression, incomplete, incomplete_reason
        return getattr(self._source, name)

    def chunks(self) -> Iterator[list[str]]:
        chunks = self._source.chunks()
        left = self._limit
        try:
            for chunk in chunks:
                if len(self.first_lines) < HINT_LINES:
                    self.first_lines.extend(chunk[: HINT_LINES - len(self.first_lines)])
                if left <= 0:
                    if chunk:
                        return  # a line after the sample
                    continue
                if len(chunk) > left:
                    yield chunk[:left]
                    return
                left -= len(chunk)
                yield chunk
            self.reached_end = True
        finally:
            chunks.close()  # the reader stops: no further block is read or decompressed


__all__ = ["MAX_INVALID_SHARE", "SAMPLE_LINES", "ProbeResult", "check_usable"]
