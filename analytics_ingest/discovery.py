"""Finding settled log files in a directory, and what their content says about them.

Rules from EEA and SciELO: rsync's temporary files (dot-prefixed) and the live file of the current
hour (EEA's hourly-rotated ``access_log.YYYY-MM-DD-HH``) are never touched; a file is settled when
its size and mtime did not change between two looks; a file's days come from its content, with
the date in its name as a hint; a file whose content contradicts its name, or whose clients are
mostly local addresses, is invalid (SciELO's validator).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from .errors import InputError
from .logs import open_log
from .logs.detect import DETECT_LINES, detect_parser
from .logs.reader import TOO_LONG

COMPRESSED_WHOLE_LIMIT = 64 << 20  # compressed files up to this size are read whole for their days
TAIL_BYTES = 1 << 20
MIN_REMOTE_SHARE = 0.10  # SciELO: IPs are fine if remote > local or remote > 10 %


@dataclass(frozen=True)
class Observed:
    path: str
    size: int
    mtime_ns: int


def list_candidates(root, pattern: str, *, now: dt.datetime | None = None) -> list[Observed]:
    """Regular files below ``root`` whose name matches ``pattern``, minus temp and live files."""
    now = now or dt.datetime.now(dt.timezone.utc)
    live_stamp = now.astimezone(dt.timezone.utc).strftime("%Y-%m-%d-%H")
    found: list[Observed] = []
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue  # rsync's temporary files, hidden folders
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    if not entry.is_file() or not fnmatch.fnmatch(name, pattern) or live_stamp in name:
                        continue
                    st = entry.stat()
                except OSError:
                    continue
                found.append(Observed(entry.path, st.st_size, st.st_mtime_ns))
    found.sort(key=lambda o: o.path)
    return found


def settled(previous: dict, observed: list[Observed]) -> tuple[dict, list[Observed]]:
    """(state for the next look, files whose size and mtime equal what the last look saw)."""
    state = {o.path: [o.size, o.mtime_ns] for o in observed}
    stable = [o for o in observed if previous.get(o.path) == [o.size, o.mtime_ns]]
    return state, stable


@dataclass(frozen=True)
class FileVerdict:
    days: dict[str, int]
    probable_day: str | None
    name_day: str | None
    valid: bool
    reason: str | None
    local_ip_share: float
    format_name: str | None


_NAME_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


def name_day(name: str) -> str | None:
    for match in _NAME_DATE.finditer(name):
        try:
            return dt.date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            continue
    return None


def _sample_lines(path: str) -> tuple[list[str], str]:
    """Head (and tail, or the whole file when compressed and not huge) of a log."""
    size = os.path.getsize(path)
    with open_log(path) as source:
        compressed = source.compression != "none"
        whole = compressed and size <= COMPRESSED_WHOLE_LIMIT
        lines: list[str] = []
        for chunk in source.chunks():
            lines.extend(chunk)
            if not whole and len(lines) >= 5000:
                break
        if whole or compressed or size <= TAIL_BYTES:
            return lines, source.compression
    with open(path, "rb") as fh:
        fh.seek(max(0, size - TAIL_BYTES))
        tail = fh.read().split(b"\n")[1:]  # the first piece is a partial line
    lines.extend(line.decode("utf-8", "replace").rstrip("\r") for line in tail if line)
    return lines, "none"


def _is_local(ip: str, cache: dict) -> bool:
    local = cache.get(ip)
    if local is None:
        try:
            address = ipaddress.ip_address(ip)
            local = address.is_private or address.is_loopback or address.is_link_local
        except ValueError:
            local = False
        cache[ip] = local
    return local


def inspect_file(path: str, *, timezone: str = "UTC", sample_lines: int = 5000, max_days_from_name: int = 5) -> FileVerdict:
    try:
        lines, _compression = _sample_lines(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    from_name = name_day(os.path.basename(path))
    candidates = [line for line in lines if line is not TOO_LONG]
    parser = None
    for start in range(0, min(len(candidates), 50 * DETECT_LINES), DETECT_LINES):
        parser = detect_parser(candidates[start : start + DETECT_LINES])
        if parser is not None:
            break
    if parser is None:
        return FileVerdict({}, None, from_name, False, "not an access log: no line matched a known format", 0.0, None)
    tz = dt.timezone.utc if timezone == "UTC" else ZoneInfo(timezone)
    hours: Counter = Counter()
    local = remote = 0
    ip_cache: dict = {}
    for number, line in enumerate(candidates, 1):
        hit = parser.parse(line, number)
        if isinstance(hit, str):
            continue
        hours[hit.cdt[:13]] += 1
        if _is_local(hit.ip, ip_cache):
            local += 1
        else:
            remote += 1
    days: Counter = Counter()
    for hour, n in hours.items():
        utc = dt.datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=dt.timezone.utc)
        days[utc.astimezone(tz).date().isoformat()] += n
    parsed = local + remote
    if not parsed:
        return FileVerdict({}, None, from_name, False, "not an access log: no line could be parsed", 0.0, parser.name)
    probable = days.most_common(1)[0][0]
    local_share = local / parsed
    remote_share = remote / parsed
    reason = None
    if not (remote_share > local_share or remote_share > MIN_REMOTE_SHARE):
        reason = f"{local_share:.0%} of client IPs are local addresses (proxy or anonymised log?)"
    elif from_name is not None:
        gap = abs((dt.date.fromisoformat(probable) - dt.date.fromisoformat(from_name)).days)
        if gap > max_days_from_name:
            reason = f"content dates ({probable}) are {gap} days from the name's date ({from_name})"
    return FileVerdict(dict(sorted(days.items())), probable, from_name, reason is None, reason, local_share, parser.name)
