"""Read, parse, classify and count every line of one log; hand tracked hits to a callback.

Every line lands in exactly one category (``lines_total == sum(counts.values())`` always):
tracked (pages, downloads), ignored (bots, static, http errors, redirects, filtered — W3C
header lines count as filtered, reason ``w3c_header``) or invalid (with a reason).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

from ..hits import Hit
from ..site_time import local_days
from ..vocabulary import DOWNLOADS, FILTERED, IGNORED_CATEGORIES, INVALID, PAGES, TRACKED_CATEGORIES
from ..weblogs.classify import Classifier, ClassifyOptions
from .base import SKIP_LINE, invalid_reason
from .formats import DETECT_LINES, detect_parser, make_parser, wants_detection
from .reader import LogSource

MAX_SAMPLES = 10
SAMPLE_CHARS = 200
W3C_HEADER = "w3c_header"
# Give up looking for a format after this many lines that no format could parse.
DETECT_GIVE_UP_LINES = 100_000


def _all_categories() -> dict[str, int]:
    return {c: 0 for c in (*TRACKED_CATEGORIES, *IGNORED_CATEGORIES, INVALID)}


@dataclass
class ScanStats:
    lines_total: int = 0
    counts: dict[str, int] = field(default_factory=_all_categories)
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    invalid_samples: list[tuple[int, str, str]] = field(default_factory=list)
    format_name: str = ""
    compression: str = ""
    incomplete: bool = False
    incomplete_reason: str | None = None
    # Tracked hits per UTC minute ("YYYY-MM-DD HH:MM"): not per day, because a day is the site's
    # local day (Matomo's), known only with the site's timezone (see local_days()); minutes, so
    # that zones offset by :30 or :45 (India, Nepal, Chatham) fall on the right side of midnight.
    utc_minutes: dict[str, int] = field(default_factory=dict)
    first_cdt: str | None = None  # over tracked hits
    last_cdt: str | None = None
    filtered_reasons: dict[str, int] = field(default_factory=dict)  # why FILTERED: w3c_header, exclude_path, ...

    def local_days(self, timezone: str) -> dict[str, int]:
        """Tracked hits per site-local day (``YYYY-MM-DD``) in ``timezone``."""
        return local_days(self.utc_minutes, timezone)


def scan(
    source: LogSource,
    *,
    format_name: str | None = None,
    regex: str | None = None,
    date_format: str | None = None,
    options: ClassifyOptions = ClassifyOptions(),
    on_tracked: Callable[[Hit, str, bool], None] | None = None,
    stats: ScanStats | None = None,
) -> ScanStats:
    """Scan ``source`` to the end; see the module docstring. ``on_tracked``'s exceptions propagate."""
    if stats is None:
        stats = ScanStats()
    stats.compression = source.compression
    counter = _Counter(stats, Classifier(options), on_tracked)
    chunks = source.chunks()
    try:
        if wants_detection(format_name, regex):
            parser = _detect(chunks, counter, stats)
        else:
            parser = make_parser(format_name, [], regex=regex, date_format=date_format)
        if parser is not None:
            stats.format_name = parser.name
            step = counter.stepper(parser)
            for chunk in chunks:
                counter.run(step, chunk)
        else:
            for chunk in chunks:
                counter.unparsed(chunk)
    finally:
        counter.flush()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        stats.incomplete = bool(source.incomplete)
        stats.incomplete_reason = source.incomplete_reason
    return stats


def _detect(chunks, counter: _Counter, stats: ScanStats):
    """Buffer lines until a format can be told; lines no format parses are counted meanwhile."""
    buffered: list[str] = []
    tried = 0  # lines of ``buffered`` already given to detection without success
    failed = 0  # all lines so far that no format could parse
    for chunk in chunks:
        buffered.extend(chunk)
        while len(buffered) - tried >= DETECT_LINES:
            parser = detect_parser(buffered[tried : tried + DETECT_LINES])
            if parser is not None:
                return _start(parser, buffered, tried, counter, stats)
            tried += DETECT_LINES
            failed += DETECT_LINES
            if failed >= DETECT_GIVE_UP_LINES:
                counter.unparsed(buffered)
                return None
        if tried:
            counter.unparsed(buffered[:tried])
            del buffered[:tried]
            tried = 0
    if len(buffered) > tried:
        parser = detect_parser(buffered[tried:])
        if parser is not None:
            return _start(parser, buffered, tried, counter, stats)
    counter.unparsed(buffered)
    return None


def _start(parser, buffered: list[str], tried: int, counter: _Counter, stats: ScanStats):
    """A format was found: lines before ``tried`` matched no format; parse the rest with it."""
    counter.unparsed(buffered[:tried])
    stats.format_name = parser.name
    counter.run(counter.stepper(parser), buffered[tried:])
    return parser


class _Counter:
    """The per-line loop and the counters it updates (kept as locals during a chunk)."""

    def __init__(self, stats: ScanStats, classifier: Classifier, on_tracked) -> None:
        self.stats = stats
        self.classifier = classifier
        self.on_tracked = on_tracked
        self.enable_bots = classifier.options.enable_bots
        self.line_no = 0  # line numbers are per file, whatever ``stats`` already holds
        self.cdts: list[str] = []  # cdt of tracked hits since the last flush
        self.holder: list = [None]  # the Hit of the line just stepped, when it has one
        self._step_of = self._step = None

    def stepper(self, parser):
        """The parser's stepper for this scan (cached: its caches must live across chunks)."""
        if self._step_of is not parser:
            self._step_of, self._step = parser, parser.stepper(self.classifier, self.holder)
        return self._step

    def run(self, step, lines: list[str]) -> None:
        """Count ``lines`` with ``step`` (a :meth:`LineParser.stepper` writing into ``self.holder``)."""
        stats = self.stats
        counts = stats.counts
        counts_get = counts.get
        holder = self.holder
        is_bot = self.classifier.is_bot if self.enable_bots else None
        on_tracked = self.on_tracked
        add_cdt = self.cdts.append
        skip = SKIP_LINE
        pages, downloads, filtered = PAGES, DOWNLOADS, FILTERED
        n_pages = n_downloads = 0
        line_no = self.line_no
        try:
            for line in lines:
                line_no += 1
                category = step(line, line_no)
                if category is pages or category is downloads:
                    if category is pages:
                        n_pages += 1
                    else:
                        n_downloads += 1
                    hit = holder[0]
                    add_cdt(hit.cdt)
                    if on_tracked is not None:
                        on_tracked(hit, category, is_bot(hit) if is_bot is not None else False)
                elif category is skip:
                    counts[filtered] += 1
                    self.count_filtered(W3C_HEADER)
                else:
                    count = counts_get(category)
                    if count is None:
                        self.invalid(line_no, category, line)
                    else:
                        counts[category] = count + 1
                        if category is filtered:
                            self.count_filtered(self.classifier.filter_reason(holder[0]) or "filtered")
        finally:
            # Count what was processed even if on_tracked raised (that hit is counted tracked).
            counts[pages] += n_pages
            counts[downloads] += n_downloads
            stats.lines_total += line_no - self.line_no
            self.line_no = line_no
            if len(self.cdts) >= 100_000:
                self.flush()

    def unparsed(self, lines: list[str]) -> None:
        """Lines no format could parse: each one is invalid."""
        for line in lines:
            self.line_no += 1
            self.stats.lines_total += 1
            self.invalid(self.line_no, invalid_reason(line), line)

    def flush(self) -> None:
        """Fold the collected tracked cdts into days / first / last."""
        cdts = self.cdts
        if not cdts:
            return
        stats = self.stats
        low, high = min(cdts), max(cdts)
        if stats.first_cdt is None or low < stats.first_cdt:
            stats.first_cdt = low
        if stats.last_cdt is None or high > stats.last_cdt:
            stats.last_cdt = high
        minutes = stats.utc_minutes
        for minute, n in Counter(map(_MINUTE, cdts)).items():
            minutes[minute] = minutes.get(minute, 0) + n
        cdts.clear()

    def invalid(self, line_no: int, reason: str, line: str) -> None:
        stats = self.stats
        stats.counts[INVALID] += 1
        reasons = stats.invalid_reasons
        reasons[reason] = reasons.get(reason, 0) + 1
        if len(stats.invalid_samples) < MAX_SAMPLES:
            stats.invalid_samples.append((line_no, reason, line[:SAMPLE_CHARS]))

    def count_filtered(self, reason: str) -> None:
        reasons = self.stats.filtered_reasons
        reasons[reason] = reasons.get(reason, 0) + 1


_MINUTE = itemgetter(slice(0, 16))


__all__ = ["ScanStats", "scan"]
