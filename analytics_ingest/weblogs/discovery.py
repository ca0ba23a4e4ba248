"""Finding settled log files in a directory, and what their content says about them.

Rules from EEA and SciELO: rsync's temporary files (dot-prefixed) and the live file of the current
hour (EEA's hourly-rotated ``access_log.YYYY-MM-DD-HH``) are never touched; a file is settled when
its size and mtime did not change between two looks; a file's days come from its content, with
the date in its name as a hint; a file whose content contradicts its name, or whose clients are
mostly local addresses, is invalid (SciELO's validator).

:func:`inspect_file` samples the head of a file and, for a plain file, the lines of its last MiB
(a file that spans midnight shows both days); a compressed file cannot be seeked, so one of up
to 64 MiB is read whole (streaming), a bigger one head only.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass

from ..errors import InputError
from ..hits import Hit
from ..logs import open_log
from ..logs.detect import DETECT_LINES, detect_parser
from ..logs.formats import make_parser
from ..logs.reader import TOO_LONG, decode_part
from ..logs.scan import DETECT_GIVE_UP_LINES
from ..site_time import local_days, site_zone

COMPRESSED_WHOLE_LIMIT = 64 << 20  # compressed files up to this size are read whole for their days
TAIL_BYTES = 1 << 20  # plain files: the lines of the last MiB are sampled too
MIN_REMOTE_SHARE = 0.10  # SciELO: IPs are fine if remote > local or remote > 10 %

_UTC = dt.timezone.utc
_LOCAL, _REMOTE, _OTHER = 0, 1, 2


# -- listing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Observed:
    path: str
    size: int
    mtime_ns: int


def list_candidates(root: str | os.PathLike, pattern: str, *, now: dt.datetime | None = None) -> list[Observed]:
    """Regular files below ``root`` (recursively) whose name matches ``pattern``, sorted by path.

    Skipped: dot-prefixed names (rsync's temporary ``.name.a1B2c3`` files, hidden files and
    folders), names holding the current UTC hour's ``YYYY-MM-DD-HH`` stamp (``now``; a naive
    ``now`` is taken as UTC), symlinked folders, and entries that vanish or cannot be read. A
    missing ``root`` gives ``[]``.
    """
    if now is None:
        now = dt.datetime.now(_UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=_UTC)
    live_stamp = now.astimezone(_UTC).strftime("%Y-%m-%d-%H")
    matches = re.compile(fnmatch.translate(pattern)).match  # case-sensitive, like fnmatch on POSIX
    is_regular, readable, R_OK = stat.S_ISREG, os.access, os.R_OK
    found: list[Observed] = []
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError:
            continue  # missing, not a folder, no permission, vanished
        for entry in entries:
            name = entry.name
            if name[:1] == ".":
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
                if not matches(name) or live_stamp in name:
                    continue
                st = entry.stat()  # follows a symlinked file
            except OSError:
                continue
            if is_regular(st.st_mode) and readable(entry.path, R_OK):
                found.append(Observed(entry.path, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda o: o.path)
    return found


def settled(previous: dict[str, list[int]] | None, observed: list[Observed]) -> tuple[dict[str, list[int]], list[Observed]]:
    """(state for the next look, files whose ``[size, mtime_ns]`` equal what the last look saw).

    The state maps every observed path to ``[size, mtime_ns]``; it is JSON-serialisable (a
    sensor cursor). Vanished files drop out of it; new and changed files settle one look later.
    """
    previous = previous or {}
    state = {o.path: [o.size, o.mtime_ns] for o in observed}
    stable = []
    for o in observed:
        seen = previous.get(o.path)
        if seen is not None and len(seen) == 2 and seen[0] == o.size and seen[1] == o.mtime_ns:
            stable.append(o)
    return state, stable


# -- inspecting ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileVerdict:
    days: dict[str, int]  # site-local day -> sampled parsed lines on it
    probable_day: str | None  # the most frequent day of the sample (the earliest on a tie)
    name_day: str | None  # the date in the file name, if any
    valid: bool
    reason: str | None  # one line when invalid
    local_ip_share: float  # share of sampled parsed lines with a private/loopback/link-local IP
    format_name: str | None


_DASHED = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_COMPACT = re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})")  # may go on with a time: 20240314120000


def name_day(name: str) -> str | None:
    """The first real calendar date in ``name``: ``YYYY-MM-DD``, else ``YYYYMMDD`` (SciELO's rule)."""
    for pattern in (_DASHED, _COMPACT):
        for match in pattern.finditer(name):
            try:
                return dt.date(*(int(g) for g in match.groups())).isoformat()
            except ValueError:
                continue
    return None


def inspect_file(
    path: str | os.PathLike,
    *,
    timezone: str = "UTC",
    sample_lines: int = 5000,
    max_days_from_name: int = 5,
    format_name: str | None = None,
) -> FileVerdict:
    """What the content of a log file says: its site-local days, format, and whether it is usable.

    ``format_name`` (optional) skips detection, like a site's configured ``format``. Never raises
    for bad content; an unreadable file raises :class:`InputError`.
    """
    path = os.fspath(path)
    from_name = name_day(os.path.basename(path))
    tally = _Tally(site_zone(timezone), format_name)
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions") from None
    if size == 0:
        return FileVerdict({}, None, from_name, False, "empty file: no lines to import", 0.0, None)
    with open_log(path) as source:
        compressed = source.compression != "none"
        whole = compressed and size <= COMPRESSED_WHOLE_LIMIT
        head_end = _read_head(source, tally, None if whole else max(1, sample_lines))
    if not compressed and head_end is not None and head_end < size:
        _read_tail(path, max(head_end, size - TAIL_BYTES), tally)
    return tally.verdict(from_name, max_days_from_name)


def _read_head(source, tally: _Tally, limit: int | None) -> int | None:
    """Feed the first ``limit`` lines (all if None) to ``tally``.

    Returns the byte offset just past the last line fed (plain files; may overshoot after an
    over-long line), or None when the whole file was read.
    """
    offset = 0
    exact = True
    taken = 0
    parts = source.raw_chunks()
    try:
        for part in parts:
            if part.__class__ is str:  # an over-long line: its length is not known here
                exact = False
                taken += 1
                if limit is not None and taken >= limit:
                    return source.raw_position()
                continue
            lines = decode_part(part)
            if limit is not None and taken + len(lines) >= limit:
                need = limit - taken
                tally.feed(lines[:need])
                if not exact:
                    return source.raw_position()
                return offset + sum(len(piece) + 1 for piece in part.split(b"\n", need)[:need])
            tally.feed(lines)
            taken += len(lines)
            offset += len(part) + 1
    finally:
        parts.close()
    return None


def _read_tail(path: str, start: int, tally: _Tally) -> None:
    """Feed the whole lines that start at or after byte ``start`` of a plain file."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, start - 1))
            data = fh.read(TAIL_BYTES + 1) if start > 0 else fh.read(TAIL_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check the path and permissions") from None
    if start > 0:
        cut = data.find(b"\n")  # at 0 when start is a line start; else the end of a partial line
        data = data[cut + 1 :] if cut >= 0 else b""
    if data.endswith(b"\n"):
        data = data[:-1]
    if data:
        tally.feed(decode_part(data))


class _Tally:
    """Detects the format on the first lines, then counts parsed lines per UTC minute and IP kind."""

    def __init__(self, tz, format_name: str | None) -> None:
        self.tz = tz
        self.parser = make_parser(format_name, []) if format_name not in (None, "", "auto") else None
        self.fixed = self.parser is not None
        self.pending: list[str] = []  # lines waiting for a detected format
        self.tried = 0  # lines of ``pending`` no format could parse
        self.gave_up = False
        self.line_no = 0
        self.minutes: Counter = Counter()
        self.kinds = [0, 0, 0]  # local, remote, not an IP address
        self.ip_cache: dict[str, int] = {}

    def feed(self, lines: list[str]) -> None:
        if self.parser is None:
            if self.gave_up:
                return
            self.pending.extend(lines)
            self._detect(final=False)
            if self.parser is None:
                return
            lines, self.pending = self.pending[self.tried :], []
        self._count(lines)

    def _detect(self, final: bool) -> None:
        pending = self.pending
        while len(pending) - self.tried >= DETECT_LINES or (final and len(pending) > self.tried):
            window = [line for line in pending[self.tried : self.tried + DETECT_LINES] if line is not TOO_LONG]
            parser = detect_parser(window) if window else None
            if parser is not None:
                self.parser = parser
                return
            self.tried += DETECT_LINES
            if self.tried >= DETECT_GIVE_UP_LINES:
                self.gave_up = True
                self.pending = []
                return
        if self.tried:
            del pending[: self.tried]
            self.line_no += self.tried
            self.tried = 0

    def _count(self, lines: list[str]) -> None:
        parse = self.parser.parse
        minutes = self.minutes
        kinds = self.kinds
        cache = self.ip_cache
        hit_type = Hit
        number = self.line_no
        for line in lines:
            number += 1
            if line is TOO_LONG:
                continue
            hit = parse(line, number)
            if hit.__class__ is not hit_type:
                continue
            minutes[hit.cdt[:16]] += 1
            kind = cache.get(hit.ip)
            if kind is None:
                kind = _ip_kind(hit.ip)
                if len(cache) < 100_000:
                    cache[hit.ip] = kind
            kinds[kind] += 1
        self.line_no = number

    def _days(self) -> Counter:
        return Counter(local_days(self.minutes, self.tz))

    def verdict(self, from_name: str | None, max_days_from_name: int) -> FileVerdict:
        if self.parser is None and not self.gave_up and self.pending:
            self._detect(final=True)
            if self.parser is not None:
                lines, self.pending = self.pending[self.tried :], []
                self._count(lines)
        parsed = sum(self.kinds)
        name = self.parser.name if self.parser is not None else None
        if not parsed:
            reason = ("not an access log: no line matched a known format" if not self.fixed
                      else f"no line matched the format {name}; check the site's format")
            return FileVerdict({}, None, from_name, False, reason, 0.0, name)
        days = self._days()
        probable = min(days, key=lambda d: (-days[d], d))
        local_share = self.kinds[_LOCAL] / parsed
        remote_share = self.kinds[_REMOTE] / parsed
        reasons = []
        if not (remote_share > local_share or remote_share > MIN_REMOTE_SHARE):
            if self.kinds[_LOCAL]:
                reasons.append(f"{local_share:.0%} of sampled client IPs are local addresses (private, loopback, "
                               f"link-local) and {remote_share:.0%} public: a proxy's log? log the real client IP")
            else:
                reasons.append(f"only {remote_share:.0%} of sampled client IPs are public addresses "
                               f"({self.kinds[_OTHER] / parsed:.0%} are not IP addresses)")
        if from_name is not None:
            gap = abs((dt.date.fromisoformat(probable) - dt.date.fromisoformat(from_name)).days)
            if gap > max_days_from_name:
                reasons.append(f"content dates ({probable}) are {gap} days from the name's date ({from_name})")
        reason = "; ".join(reasons) or None
        return FileVerdict(dict(sorted(days.items())), probable, from_name, reason is None, reason, local_share, name)


def _ip_kind(ip: str) -> int:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return _OTHER
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address.is_private or address.is_loopback or address.is_link_local:
        return _LOCAL
    return _REMOTE if address.is_global else _OTHER


__all__ = ["FileVerdict", "Observed", "inspect_file", "list_candidates", "name_day", "settled"]
