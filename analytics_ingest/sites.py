"""Site configuration: which Matomo sites exist, where their rsync'd logs are, how to read them.

One YAML file (``ANALYTICS_INGEST_SITES``, else the bundled demo) with a ``sites:`` list. Every
mistake is reported as one line naming the file and the key, e.g.
``sites.yaml: sites[0].timezone: unknown timezone 'Mars/Base'; use an IANA name such as Europe/Paris``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .classify import ClassifyOptions
from .errors import ConfigError, InputError

ENV_SITES = "ANALYTICS_INGEST_SITES"
_KEYS = {"id", "key", "name", "main_url", "log_dir", "file_pattern", "format", "timezone", "start_date",
         "classify", "expected_files", "rsync_commands", "lanes", "batch_size"}
_REQUIRED = ("id", "name", "main_url", "log_dir", "start_date")


@dataclass(frozen=True)
class ExpectedFiles:
    start: dt.date
    end: dt.date | None
    count: int


@dataclass(frozen=True)
class SiteConfig:
    id: int
    key: str
    name: str
    main_url: str
    log_dir: Path
    start_date: dt.date
    file_pattern: str = "*"
    format: str | None = None
    timezone: str = "UTC"
    classify: ClassifyOptions = field(default_factory=ClassifyOptions)
    expected_files: tuple[ExpectedFiles, ...] = ()
    rsync_commands: tuple[str, ...] = ()
    lanes: int = 4
    batch_size: int = 500

    def expected_on(self, day: dt.date) -> int:
        for r in self.expected_files:
            if r.start <= day and (r.end is None or day <= r.end):
                return r.count
        return 1


def demo_sites_path() -> Path:
    return Path(__file__).resolve().parent / "demo" / "sites.yaml"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


class _Errors:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {what}")


def _date(value, where: str, err: _Errors) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise err.fail(where, f"{value!r} is not a date; write YYYY-MM-DD") from None


def _int(value, where: str, err: _Errors, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise err.fail(where, f"{value!r} must be a whole number >= {minimum}")
    return value


def _site(raw, i: int, base: Path, err: _Errors) -> SiteConfig:
    at = f"sites[{i}]"
    if not isinstance(raw, dict):
        raise err.fail(at, "must be a mapping of keys such as id, name, main_url, log_dir, start_date")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise err.fail(f"{at}.{unknown[0]}", f"unknown key; known keys are {', '.join(sorted(_KEYS))}")
    for key in _REQUIRED:
        if raw.get(key) in (None, ""):
            raise err.fail(f"{at}.{key}", "is required")
    idsite = _int(raw["id"], f"{at}.id", err)
    name = str(raw["name"])
    key = str(raw.get("key") or _slug(name))
    if not re.fullmatch(r"[a-z0-9_]+", key) or key[0].isdigit():
        raise err.fail(f"{at}.key", f"{key!r} must be lower-case letters, digits and _ (not starting with a digit)")
    main_url = str(raw["main_url"])
    parts = urlsplit(main_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise err.fail(f"{at}.main_url", f"{main_url!r} is not an http(s) URL")
    log_dir = Path(os.path.expandvars(os.path.expanduser(str(raw["log_dir"]))))
    if not log_dir.is_absolute():
        log_dir = (base / log_dir).resolve()
    timezone = str(raw.get("timezone") or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise err.fail(f"{at}.timezone", f"unknown timezone {timezone!r}; use an IANA name such as Europe/Paris") from None
    fmt = raw.get("format")
    if fmt in (None, "", "auto"):
        fmt = None
    else:
        from .logs.formats import resolve_name

        try:
            fmt = resolve_name(str(fmt))
        except InputError as exc:
            raise err.fail(f"{at}.format", str(exc)) from None
    classify_raw = raw.get("classify") or {}
    if not isinstance(classify_raw, dict):
        raise err.fail(f"{at}.classify", "must be a mapping of import options")
    known = {f.name for f in fields(ClassifyOptions)}
    bad = sorted(set(classify_raw) - known)
    if bad:
        raise err.fail(f"{at}.classify.{bad[0]}", f"unknown option; known: {', '.join(sorted(known))}")
    classify = ClassifyOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in classify_raw.items()})
    ranges = []
    for j, r in enumerate(raw.get("expected_files") or []):
        where = f"{at}.expected_files[{j}]"
        if not isinstance(r, dict) or "from" not in r or "count" not in r or set(r) - {"from", "to", "count"}:
            raise err.fail(where, "must be {from: YYYY-MM-DD, to: YYYY-MM-DD or omitted, count: N}")
        start = _date(r["from"], f"{where}.from", err)
        end = _date(r["to"], f"{where}.to", err) if r.get("to") is not None else None
        if end is not None and end < start:
            raise err.fail(f"{where}.to", "is before 'from'")
        ranges.append(ExpectedFiles(start, end, _int(r["count"], f"{where}.count", err, minimum=0)))
    ranges.sort(key=lambda r: r.start)
    for a, b in zip(ranges, ranges[1:]):
        if a.end is None or a.end >= b.start:
            # An open range ends where the next one starts: SciELO's counts change on a date.
            if a.end is None:
                ranges[ranges.index(a)] = ExpectedFiles(a.start, b.start - dt.timedelta(days=1), a.count)
            else:
                raise err.fail(f"{at}.expected_files", f"ranges from {a.start} and {b.start} overlap")
    commands = raw.get("rsync_commands") or ()
    if isinstance(commands, str):
        commands = [c for c in commands.split(";")]  # EEA's RSYNC_COMMANDS: ';'-separated
    commands = tuple(str(c).strip() for c in commands if str(c).strip())
    return SiteConfig(
        id=idsite, key=key, name=name, main_url=main_url, log_dir=log_dir,
        start_date=_date(raw["start_date"], f"{at}.start_date", err),
        file_pattern=str(raw.get("file_pattern") or "*"), format=fmt, timezone=timezone, classify=classify,
        expected_files=tuple(ranges), rsync_commands=commands,
        lanes=_int(raw.get("lanes", 4), f"{at}.lanes", err), batch_size=_int(raw.get("batch_size", 500), f"{at}.batch_size", err),
    )


def load_sites(path: str | os.PathLike | None = None) -> list[SiteConfig]:
    path = Path(path or os.environ.get(ENV_SITES) or demo_sites_path())
    err = _Errors(path.name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sites file {path} not found; set {ENV_SITES} to your sites YAML") from None
    except OSError as exc:
        raise ConfigError(f"cannot read sites file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise err.fail(where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict) or set(data) != {"sites"} or not isinstance(data["sites"], list):
        raise err.fail("top level", "must be a mapping with one key, sites: a list of sites")
    if not data["sites"]:
        raise err.fail("sites", "is empty; configure at least one site")
    sites = [_site(raw, i, path.parent.resolve(), err) for i, raw in enumerate(data["sites"])]
    for attr in ("id", "key"):
        seen: dict = {}
        for i, site in enumerate(sites):
            value = getattr(site, attr)
            if value in seen:
                raise err.fail(f"sites[{i}].{attr}", f"{value!r} is already used by sites[{seen[value]}]")
            seen[value] = i
    return sites
