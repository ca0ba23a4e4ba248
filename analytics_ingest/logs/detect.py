"""Tell a log's format from its first lines.

W3C-style files (W3C extended, IIS, CloudFront) say so in their ``#Fields:`` header. For the
others every candidate parses the sample and each line votes for the format that parses it
with the most fields (a combined line also parses as common; it votes combined). The format
with the most votes wins; a tie goes to the one with more fields.
"""

from __future__ import annotations

from ..hits import Hit
from .aws import AwsParser
from .base import LineParser
from .jsonlog import NginxJsonParser
from .ncsa import VARIANTS, NcsaParser
from .w3c import W3cParser, flavour

DETECT_LINES = 50  # lines looked at, at a time


def _candidates() -> list[LineParser]:
    return [*(NcsaParser(name) for name in VARIANTS), NginxJsonParser(), AwsParser("elb"), AwsParser("alb")]


def detect_parser(lines: list[str]) -> LineParser | None:
    """A parser for the log these lines come from, or None if no format parses any of them."""
    headers = [line for line in lines if line[:1] == "#"]
    kind = flavour(headers) if headers else None
    if kind is not None:
        return W3cParser(kind, lines)
    candidates = _candidates()
    votes = [0] * len(candidates)
    for number, line in enumerate(lines, 1):
        # Each line votes for the richest format that parses it: a combined line also parses as
        # common, and must not make "common" win a combined log.
        choice = -1
        for i, candidate in enumerate(candidates):
            if isinstance(candidate.parse(line, number), Hit):
                if choice < 0 or candidate.field_count > candidates[choice].field_count:
                    choice = i
        if choice >= 0:
            votes[choice] += 1
    best = max(range(len(candidates)), key=lambda i: (votes[i], candidates[i].field_count))
    return candidates[best] if votes[best] else None
