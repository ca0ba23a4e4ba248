"""Log format names and :func:`make_parser`, the one way to get a :class:`LineParser`."""

from __future__ import annotations

from ..errors import InputError
from .aws import AwsParser
from .base import SKIP_LINE, LineParser
from .custom import RegexParser
from .detect import DETECT_LINES, detect_parser
from .jsonlog import NginxJsonParser
from .ncsa import NcsaParser
from .opencast_events import OPENCAST_EVENTS, OpencastEventsParser
from .replay import REPLAY, REPLAY_XFF, ReplayParser
from .w3c import CLOUDFRONT, IIS, W3C_EXTENDED, W3cParser

FORMAT_NAMES: tuple[str, ...] = (
    "common",
    "combined",
    "common_vhost",
    "common_complete",
    W3C_EXTENDED,
    IIS,
    CLOUDFRONT,
    "nginx_json",
    "elb",
    "alb",
    "regex",
)
# Journals of tracker requests replayed from CloudWatch (analytics_ingest.cloudwatch.replay):
# accepted by name, never auto-detected, and kept out of FORMAT_NAMES (the formats offered for
# ordinary access logs).
REPLAY_FORMAT_NAMES: tuple[str, ...] = (REPLAY, REPLAY_XFF)
# Formats of our own journals (the ledger records their files as kind "journal").
JOURNAL_FORMAT_NAMES: tuple[str, ...] = REPLAY_FORMAT_NAMES + (OPENCAST_EVENTS,)
# Other names people (and import_logs.py) use for the same formats.
ALIASES = {
    "ncsa_extended": "combined",
    "vhost_combined": "common_complete",  # Apache's name: "%v:%p" + combined
    "amazon_cloudfront": CLOUDFRONT,
}
AUTO = "auto"


def resolve_name(format_name: str | None) -> str | None:
    """Canonical format name; None for auto-detection; InputError for an unknown name."""
    if format_name is None:
        return None
    name = format_name.strip().lower().replace("-", "_")
    if name in ("", AUTO):
        return None
    name = ALIASES.get(name, name)
    if name not in FORMAT_NAMES and name not in JOURNAL_FORMAT_NAMES:
        raise InputError(
            f"unknown log format {format_name!r}; use one of {', '.join(FORMAT_NAMES)} "
            f"(aliases: {', '.join(ALIASES)}) or {AUTO}"
        )
    return name


def wants_detection(format_name: str | None, regex: str | None) -> bool:
    """Whether the format must be detected from the file's lines (validates the name)."""
    return resolve_name(format_name) is None and regex is None


def make_parser(
    format_name: str | None,
    first_lines: list[str],
    *,
    regex: str | None = None,
    date_format: str | None = None,
) -> LineParser:
    """A parser for ``format_name`` (None or ``"auto"``: detected from ``first_lines``).

    ``regex`` (with ``date_format``) is used for the ``regex`` format, and also when no name is
    given. ``date_format`` is ignored by the named formats, whose date layouts are fixed.
    """
    name = resolve_name(format_name)
    if regex is not None:
        if name not in (None, "regex"):
            raise InputError(
                f"--log-format-regex cannot be combined with --format {name}; "
                "pass --format regex or drop --log-format-regex"
            )
        return RegexParser(regex, date_format)
    if name is None:
        parser = detect_parser(first_lines[:DETECT_LINES])
        if parser is None:
            raise InputError(
                f"cannot tell the log format from the first {DETECT_LINES} lines; "
                f"pass --format (one of {', '.join(FORMAT_NAMES)})"
            )
        return parser
    if name == "regex":
        raise InputError(
            "--format regex needs --log-format-regex with named groups ip, date, status and path (or request)"
        )
    if name in (W3C_EXTENDED, IIS, CLOUDFRONT):
        return W3cParser(name, first_lines)
    if name == "nginx_json":
        return NginxJsonParser()
    if name in ("elb", "alb"):
        return AwsParser(name)
    if name in (REPLAY, REPLAY_XFF):
        return ReplayParser(name)
    if name == OPENCAST_EVENTS:
        return OpencastEventsParser()
    return NcsaParser(name)


__all__ = [
    "ALIASES",
    "DETECT_LINES",
    "FORMAT_NAMES",
    "LineParser",
    "REPLAY_FORMAT_NAMES",
    "JOURNAL_FORMAT_NAMES",
    "SKIP_LINE",
    "detect_parser",
    "make_parser",
    "resolve_name",
    "wants_detection",
]
