"""Site configuration: which Matomo sites exist, where their rsync'd logs are, how to read them.

One YAML file (``ANALYTICS_INGEST_SITES``, else the bundled demo) with a ``sites:`` list. Every
mistake is reported as one line naming the file and the key, e.g.
``sites.yaml: sites[0].timezone: unknown timezone 'Mars/Base'; use an IANA name such as Europe/Paris``.

Expected files per day are date ranges (SciELO's per-collection counts). A range without ``to``
lasts until the day before the next range's ``from`` (or for ever if it is the last), so a count
that changes on a date is written as two open ranges; ranges whose explicit ends overlap, or two
ranges starting on the same day, are errors.
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

from .config import ENV_SITES
from .errors import ConfigError, InputError
from .weblogs.classify import ClassifyOptions
from .yamlconfig import ConfigErrors, load_strict

DEFAULT_EXPECTED = 1  # files a day when no range covers the day (the ledger's default too)

_KEYS = ("id", "key", "name", "main_url", "log_dir", "file_pattern", "format", "timezone", "start_date",
         "classify", "expected_files", "rsync_commands", "lanes", "batch_size", "pretable", "counter", "archive")
_REQUIRED = ("id", "name", "main_url", "log_dir", "start_date")
_RANGE_KEYS = ("from", "to", "count")
_KEY_RE = re.compile(r"[a-z0-9_]+")
_ENV_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class ExpectedFiles:
    start: dt.date
    end: dt.date | None  # inclusive; None: no end
    count: int


PRETABLE_SOURCES = ("hits", "matomo_db")


@dataclass(frozen=True)
class PretableOptions:
    """Where the day's pretable comes from, and SciELO's wait for the neighbouring days."""

    source: str = "hits"  # hits: our parsed hits; matomo_db: Matomo's log tables (MATOMO_DB_URL)
    wait_for_neighbours: bool = True  # D-1 and D+1 Loaded too (sessions across midnight)


@dataclass(frozen=True)
class CounterOptions:
    items: Path | None = None  # URL → item rules (YAML); None: no COUNTER metrics for the site


@dataclass(frozen=True)
class ArchiveOptions:
    exact: bool = True  # Matomo's day must equal what was imported (False: a JS tracker adds more)


@dataclass(frozen=True, kw_only=True)
class SiteConfig:
    id: int  # Matomo idsite
    key: str  # [a-z0-9_]+, for asset keys, job and sensor names
    name: str
    main_url: str
    log_dir: Path  # absolute
    file_pattern: str = "*"  # fnmatch on file names, below log_dir recursively
    format: str | None = None  # None: detected
    timezone: str = "UTC"
    start_date: dt.date  # first day (partition)
    classify: ClassifyOptions = field(default_factory=ClassifyOptions)
    expected_files: tuple[ExpectedFiles, ...] = ()
    rsync_commands: tuple[str, ...] = ()
    lanes: int = 4
    batch_size: int = 500
    pretable: PretableOptions = field(default_factory=PretableOptions)
    counter: CounterOptions = field(default_factory=CounterOptions)
    archive: ArchiveOptions = field(default_factory=ArchiveOptions)

    def expected_on(self, day: dt.date) -> int:
        """Files expected on ``day``: the count of the range covering it, else 1."""
        for r in self.expected_files:
            if r.start <= day and (r.end is None or day <= r.end):
                return r.count
        return DEFAULT_EXPECTED


def demo_sites_path() -> Path:
    """The bundled demo configuration (one site reading the bundled demo logs)."""
    return Path(__file__).resolve().parent / "demo" / "sites.yaml"


def load_sites(path: str | os.PathLike | None = None) -> list[SiteConfig]:
    """The sites of ``path`` (default: ``$ANALYTICS_INGEST_SITES``, else the demo file).

    Raises :class:`ConfigError` with one line naming the file, the key and the fix.
    """
    path = Path(os.fspath(path) if path else os.environ.get(ENV_SITES) or demo_sites_path())
    path = Path(os.path.abspath(os.path.expanduser(path)))
    err = ConfigErrors(path.name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"sites file {path} not found; set {ENV_SITES} to the path of your sites YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"sites file {path} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read sites file {path}: {exc.strerror or exc}; check {ENV_SITES} and permissions") from None
    try:
        data = load_strict(text, err)
    except ValueError as exc:  # PyYAML reads 2024-02-30 as a date and fails building it
        raise _impossible_date(text, err, exc) from None
    if not isinstance(data, dict) or "sites" not in data:
        raise err.fail("top level", "must be a mapping with the key 'sites' holding a list of sites")
    extra = sorted(str(k) for k in data if k != "sites")
    if extra:
        raise err.fail(extra[0], f"unknown top-level key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}; "
                                 "only 'sites' is allowed")
    raw_sites = data["sites"]
    if not isinstance(raw_sites, list):
        raise err.fail("sites", "must be a list of sites (each item starting with '- id: ...')")
    if not raw_sites:
        raise err.fail("sites", "is empty; configure at least one site")
    sites = [_site(raw, i, path.parent, err) for i, raw in enumerate(raw_sites)]
    for attr in ("id", "key"):
        seen: dict = {}
        for i, site in enumerate(sites):
            value = getattr(site, attr)
            if value in seen:
                hint = "give each site its own Matomo id" if attr == "id" else "set a distinct 'key:' on one of them"
                raise err.fail(f"sites[{i}].{attr}", f"{value!r} is already used by sites[{seen[value]}]; {hint}")
            seen[value] = i
    return sites


def pick_site(wanted: str | None, sites: list[SiteConfig] | None = None) -> SiteConfig:
    """The site named by key or Matomo id (the only one when ``wanted`` is None); one-line InputError."""
    sites = load_sites() if sites is None else sites
    if wanted is None:
        if len(sites) == 1:
            return sites[0]
        raise InputError(f"the sites file has {len(sites)} sites; choose one with --site "
                         f"({', '.join(s.key for s in sites)})")
    for site in sites:
        if str(wanted) in (site.key, str(site.id)):
            return site
    raise InputError(f"no site {wanted!r} in the sites file; use one of {', '.join(s.key for s in sites)}")


# -- validation ---------------------------------------------------------------------------------
def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _text(value, where: str, err: ConfigErrors, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise err.fail(where, f"{value!r} must be non-empty text, e.g. {example}")
    return value.strip()


def _date(value, where: str, err: ConfigErrors) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise err.fail(where, f"{value!r} is not a date; write YYYY-MM-DD, e.g. 2024-03-01") from None


def _impossible_date(text: str, err: ConfigErrors, exc: ValueError):
    """The error naming the key of a date YAML recognised but cannot build (2024-02-30, 2024-13-01)."""
    timestamp = yaml.SafeLoader("")

    def walk(node, where: str):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                found = walk(value, f"{where}.{name}" if where else str(name))
                if found:
                    return found
        elif isinstance(node, yaml.SequenceNode):
            for j, item in enumerate(node.value):
                found = walk(item, f"{where}[{j}]")
                if found:
                    return found
        elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:timestamp":
            try:
                timestamp.construct_yaml_timestamp(node)
            except ValueError as bad:
                return where or "top level", node.value, bad
        return None

    try:
        found = walk(yaml.compose(text, Loader=yaml.SafeLoader), "")
    except yaml.YAMLError:
        found = None
    if found is None:
        return err.fail("YAML", f"a value cannot be read ({exc}); fix it")
    where, value, reason = found
    return err.fail(where, f"{value!r} is not a date ({reason}); write YYYY-MM-DD, e.g. 2024-03-01")


def _int(value, where: str, err: ConfigErrors, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise err.fail(where, f"{value!r} must be a whole number >= {minimum}")
    return value


def _unknown(raw: dict, known, at: str, err: ConfigErrors, what: str = "key") -> None:
    bad = [str(k) for k in raw if k not in known]
    if bad:
        plural = "s" if len(bad) > 1 else ""
        raise err.fail(f"{at}.{bad[0]}", f"unknown {what}{plural} {', '.join(map(repr, bad))}; "
                                         f"known {what}s are {', '.join(known)}")


def _site(raw, i: int, base: Path, err: ConfigErrors) -> SiteConfig:
    at = f"sites[{i}]"
    if not isinstance(raw, dict):
        raise err.fail(at, "must be a mapping with keys such as id, name, main_url, log_dir, start_date")
    _unknown(raw, _KEYS, at, err)
    for key in _REQUIRED:
        if raw.get(key) in (None, ""):
            raise err.fail(f"{at}.{key}", "is required")
    idsite = _int(raw["id"], f"{at}.id", err)
    name = _text(raw["name"], f"{at}.name", err, "My site")
    if raw.get("key") is not None:
        key = raw["key"]
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise err.fail(f"{at}.key", f"{key!r} must be lower-case letters, digits and _, e.g. my_site")
    else:
        key = _slug(name)
        if not key:
            raise err.fail(f"{at}.key", f"cannot be derived from the name {name!r}; set key: (lower-case letters, "
                                        "digits and _)")
    main_url = _text(raw["main_url"], f"{at}.main_url", err, "https://example.org")
    parts = urlsplit(main_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise err.fail(f"{at}.main_url", f"{main_url!r} is not an http(s) URL; write it like https://example.org")
    log_dir = _log_dir(raw["log_dir"], f"{at}.log_dir", base, err)
    pattern = _text(raw.get("file_pattern", "*"), f"{at}.file_pattern", err, '"access.log*"')
    if "/" in pattern or os.sep in pattern:
        raise err.fail(f"{at}.file_pattern", f"{pattern!r} is matched against file names only; put folders in "
                                             "log_dir (it is searched recursively)")
    fmt = raw.get("format")
    if fmt is not None:
        from .logs.formats import resolve_name

        fmt = _text(fmt, f"{at}.format", err, "auto")
        try:
            fmt = resolve_name(fmt)
        except InputError as exc:
            raise err.fail(f"{at}.format", str(exc)) from None
        if fmt == "regex":
            raise err.fail(f"{at}.format", "regex formats are not supported in the sites file; use a named format "
                                           "or auto")
    timezone = _text(raw.get("timezone", "UTC"), f"{at}.timezone", err, "Europe/Paris")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise err.fail(f"{at}.timezone", f"unknown timezone {timezone!r}; use an IANA name such as Europe/Paris") from None
    return SiteConfig(
        id=idsite, key=key, name=name, main_url=main_url, log_dir=log_dir, file_pattern=pattern, format=fmt,
        timezone=timezone, start_date=_date(raw["start_date"], f"{at}.start_date", err),
        classify=_classify(raw.get("classify"), f"{at}.classify", err),
        expected_files=_expected(raw.get("expected_files"), f"{at}.expected_files", err),
        rsync_commands=_commands(raw.get("rsync_commands"), f"{at}.rsync_commands", err),
        lanes=_int(raw.get("lanes", 4), f"{at}.lanes", err),
        batch_size=_int(raw.get("batch_size", 500), f"{at}.batch_size", err),
        pretable=_pretable(raw.get("pretable"), f"{at}.pretable", err),
        counter=_counter(raw.get("counter"), f"{at}.counter", base, err),
        archive=_archive(raw.get("archive"), f"{at}.archive", err),
    )


def _mapping(raw, where: str, err: ConfigErrors, keys: tuple[str, ...], example: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise err.fail(where, f"must be a mapping, e.g. {example}")
    _unknown(raw, keys, where, err)
    return raw


def _bool(value, where: str, err: ConfigErrors) -> bool:
    if not isinstance(value, bool):
        raise err.fail(where, f"{value!r} must be true or false")
    return value


def _pretable(raw, where: str, err: ConfigErrors) -> PretableOptions:
    raw = _mapping(raw, where, err, ("source", "wait_for_neighbours"), "{source: hits, wait_for_neighbours: true}")
    source = raw.get("source", "hits")
    if source not in PRETABLE_SOURCES:
        raise err.fail(f"{where}.source", f"{source!r} is not a pretable source; use one of {', '.join(PRETABLE_SOURCES)}")
    return PretableOptions(source=source,
                           wait_for_neighbours=_bool(raw.get("wait_for_neighbours", True), f"{where}.wait_for_neighbours", err))


def _counter(raw, where: str, base: Path, err: ConfigErrors) -> CounterOptions:
    raw = _mapping(raw, where, err, ("items",), "{items: counter_items.yaml}")
    if raw.get("items") is None:
        return CounterOptions()
    text = _text(raw["items"], f"{where}.items", err, "counter_items.yaml")
    if text.startswith("builtin:"):
        # the shipped examples: builtin:scielo, builtin:demo
        path = Path(__file__).resolve().parent / "counter" / f"{text.split(':', 1)[1]}_items.yaml"
    else:
        path = Path(os.path.normpath(os.path.join(base, os.path.expanduser(text))))
    if not path.is_file():
        raise err.fail(f"{where}.items", f"{text!r} is not a file; give the path of a COUNTER item rules YAML "
                                         "(relative to this file) or builtin:scielo")
    return CounterOptions(items=path)


def _archive(raw, where: str, err: ConfigErrors) -> ArchiveOptions:
    raw = _mapping(raw, where, err, ("exact",), "{exact: false}")
    return ArchiveOptions(exact=_bool(raw.get("exact", True), f"{where}.exact", err))


def _log_dir(value, where: str, base: Path, err: ConfigErrors) -> Path:
    text = _text(value, where, err, "/analytics/logs/1")
    for match in _ENV_REF.finditer(text):
        var = match.group(1) or match.group(2)
        if var not in os.environ:
            raise err.fail(where, f"environment variable {var} (in {text!r}) is not set; set it or write the path")
    expanded = os.path.expanduser(os.path.expandvars(text))
    return Path(os.path.normpath(os.path.join(base, expanded)))


def _classify(raw, where: str, err: ConfigErrors) -> ClassifyOptions:
    if raw is None:
        return ClassifyOptions()
    if not isinstance(raw, dict):
        raise err.fail(where, "must be a mapping of import options, e.g. {enable_static: true}")
    known = {f.name: f for f in fields(ClassifyOptions)}
    _unknown(raw, tuple(known), where, err, what="option")
    values = {}
    for name, value in raw.items():
        default = known[name].default
        at = f"{where}.{name}"
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise err.fail(at, f"{value!r} must be true or false")
            values[name] = value
        elif value is None:
            values[name] = default  # null: the default
        else:
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                raise err.fail(at, f"{value!r} must be a list of text values, e.g. [\"/health*\"]")
            values[name] = tuple(items)
    return ClassifyOptions(**values)


def _expected(raw, where: str, err: ConfigErrors) -> tuple[ExpectedFiles, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise err.fail(where, "must be a list like [{from: 2024-01-01, count: 1}]")
    ranges: list[tuple[ExpectedFiles, int]] = []
    for j, r in enumerate(raw):
        at = f"{where}[{j}]"
        if not isinstance(r, dict):
            raise err.fail(at, "must be {from: YYYY-MM-DD, to: YYYY-MM-DD (optional), count: N}")
        _unknown(r, _RANGE_KEYS, at, err)
        for key in ("from", "count"):
            if r.get(key) is None:
                raise err.fail(f"{at}.{key}", "is required")
        start = _date(r["from"], f"{at}.from", err)
        end = _date(r["to"], f"{at}.to", err) if r.get("to") is not None else None
        if end is not None and end < start:
            raise err.fail(f"{at}.to", f"{end} is before from ({start})")
        ranges.append((ExpectedFiles(start, end, _int(r["count"], f"{at}.count", err, minimum=0)), j))
    ranges.sort(key=lambda item: item[0].start)
    out: list[ExpectedFiles] = []
    for n, (r, j) in enumerate(ranges):
        if n + 1 < len(ranges):
            nxt, k = ranges[n + 1]
            if nxt.start == r.start:
                raise err.fail(f"{where}[{k}].from", f"{nxt.start} is also the start of {where}[{j}]; "
                                                     "give each range its own start")
            if r.end is None:
                r = ExpectedFiles(r.start, nxt.start - dt.timedelta(days=1), r.count)
            elif r.end >= nxt.start:
                raise err.fail(f"{where}[{k}]", f"range from {nxt.start} overlaps {where}[{j}] "
                                                f"({r.start} to {r.end}); make the ranges disjoint")
        out.append(r)
    return tuple(out)


def _commands(raw, where: str, err: ConfigErrors) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        items = raw.split(";")  # EEA's RSYNC_COMMANDS: one ';'-separated string
    elif isinstance(raw, list):
        for j, c in enumerate(raw):
            if not isinstance(c, str):
                raise err.fail(f"{where}[{j}]", f"{c!r} must be a shell command (text)")
        items = raw
    else:
        raise err.fail(where, "must be a list of shell commands or one ';'-separated string")
    return tuple(c.strip() for c in items if c.strip())
