"""Reading access logs: files → lines → parsed hits → counted categories."""

from .base import SKIP_LINE, LineParser
from .formats import FORMAT_NAMES, make_parser
from .reader import MAX_LINE_BYTES, TOO_LONG, LogSource, file_fingerprint, open_log, prefix_fingerprint
from .scan import ScanStats, scan

__all__ = [
    "FORMAT_NAMES",
    "MAX_LINE_BYTES",
    "SKIP_LINE",
    "TOO_LONG",
    "LineParser",
    "LogSource",
    "ScanStats",
    "file_fingerprint",
    "make_parser",
    "open_log",
    "prefix_fingerprint",
    "scan",
]
