"""Where usage aggregates live and how one day's aggregate is laid out on disk.

``<home>/usage/<site_key>/<YYYY-MM-DD>.parquet`` — one small file per site-local day, written
atomically (temporary file + rename), in "long" form so one schema holds every table:

=========  ==========================  =====================  =====================
kind       key                         vid                    hits / sessions
=========  ==========================  =====================  =====================
visitor    null                        hashed visitor id      hits, sessions of it
page       host+path (no query)        null                   page views, null
download   host+path (no query)        null                   downloads, null
=========  ==========================  =====================  =====================

The day's counts (page views, downloads, events, sessions, bots, ignored lines…) and how they
were obtained sit in the Parquet schema metadata under ``usage`` as JSON (see :class:`DayAggregate`).

Visitor ids are the first 64 bits (16 hex digits) of SHA-256(site salt + visitor key), stored as
a signed int64: small, fast to union with numpy, and no raw IP ever reaches the file. The salt is
random per site, created once in ``<home>/usage/<site_key>/salt`` (mode 0600); its fingerprint is
in every aggregate so a report refuses to mix days hashed with different salts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_file
from ..errors import ConfigError, InputError

FORMAT_VERSION = 1
META_KEY = b"usage"
KIND_VISITOR, KIND_PAGE, KIND_DOWNLOAD = "visitor", "page", "download"
SCHEMA = pa.schema([
    ("kind", pa.dictionary(pa.int8(), pa.string())),
    ("key", pa.string()),
    ("vid", pa.int64()),
    ("hits", pa.int64()),
    ("sessions", pa.int64()),
])


def usage_dir(settings, site) -> Path:
    return Path(settings.home) / "usage" / site.key


def day_path(settings, site, day: dt.date) -> Path:
    return usage_dir(settings, site) / f"{day.isoformat()}.parquet"


# -- the per-site salt ---------------------------------------------------------------------------
def site_salt(settings, site) -> bytes:
    """The site's hashing salt, created on first use. Two processes racing here agree: the file is
    published with a hard link, which fails if the other one published first."""
    directory = usage_dir(settings, site)
    path = directory / "salt"
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".salt-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        text = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the usage salt {path}: {exc.strerror or exc}; check permissions "
                          "of the state directory (ANALYTICS_INGEST_HOME)") from None
    if len(text) < 32 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError(f"usage salt {path} is damaged; restore it from a backup, or delete it together "
                          f"with every *.parquet beside it and rebuild the day aggregates")
    return bytes.fromhex(text)


def salt_id(salt: bytes) -> str:
    """A fingerprint of the salt that reveals nothing about it (for mixing checks)."""
    return hashlib.sha256(b"usage-salt-id\0" + salt).hexdigest()[:12]


def visitor_id(salt: bytes, visitor_key: str) -> int:
    """First 16 hex digits of SHA-256(salt, key) as a signed 64-bit integer."""
    digest = hashlib.sha256(salt + b"\0" + visitor_key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# -- one day ---------------------------------------------------------------------------------------
@dataclass
class DayAggregate:
    """One day read back: ``meta`` (the JSON counts), visitor ids and their hits/sessions, and the
    per-page / per-download counts."""

    day: dt.date
    meta: dict
    vids: np.ndarray  # int64, one per distinct visitor of the day
    pages: dict[str, int] = field(default_factory=dict)
    downloads: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict:
        return self.meta.get("counts", {})


def write_day(path: Path, meta: dict, visitors: dict[int, tuple[int, int]], pages: dict[str, int],
              downloads: dict[str, int]) -> Path:
    """Write a day's aggregate atomically (hidden temporary file in the folder, then rename)."""
    kinds, keys, vids, hits, sessions = [], [], [], [], []
    for vid, (n_hits, n_sessions) in visitors.items():
        kinds.append(KIND_VISITOR), keys.append(None), vids.append(vid), hits.append(n_hits)
        sessions.append(n_sessions)
    for kind, table in ((KIND_PAGE, pages), (KIND_DOWNLOAD, downloads)):
        for key, n in table.items():
            kinds.append(kind), keys.append(key), vids.append(None), hits.append(n), sessions.append(None)
    data = pa.table({
        "kind": pa.array(kinds, pa.string()).dictionary_encode().cast(SCHEMA.field("kind").type),
        "key": pa.array(keys, pa.string()),
        "vid": pa.array(vids, pa.int64()),
        "hits": pa.array(hits, pa.int64()),
        "sessions": pa.array(sessions, pa.int64()),
    }, schema=SCHEMA.with_metadata({META_KEY: json.dumps({"version": FORMAT_VERSION, **meta}, sort_keys=True)}))
    with atomic_file(path, "wb") as handle:
        pq.write_table(data, handle, compression="zstd")
    return path


def _meta_of(schema: pa.Schema, path: Path) -> dict:
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise InputError(f"{path} is not a usage aggregate (no 'usage' metadata); delete it and rebuild the day")
    meta = json.loads(raw)
    if meta.get("version") != FORMAT_VERSION:
        raise InputError(f"{path} has aggregate format {meta.get('version')}, expected {FORMAT_VERSION}; "
                         "rebuild the day aggregate")
    return meta


def read_day_meta(path: Path) -> dict:
    """Only the JSON counts of a day (reads the footer, not the rows)."""
    try:
        return _meta_of(pq.read_schema(path), path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"cannot read usage aggregate {path}: {exc}; delete it and rebuild the day") from None


def read_day(path: Path, *, tables: bool = True) -> DayAggregate:
    """A day's aggregate; ``tables=False`` skips the page/download rows (visitor ids only)."""
    try:
        table = pq.read_table(path, columns=["kind", "key", "vid", "hits"] if tables else ["kind", "vid"])
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"cannot read usage aggregate {path}: {exc}; delete it and rebuild the day") from None
    meta = _meta_of(table.schema, path)
    vid = table.column("vid")
    vids = vid.drop_null().to_numpy() if vid.null_count < len(vid) else np.empty(0, np.int64)
    agg = DayAggregate(dt.date.fromisoformat(meta["day"]), meta, vids.astype(np.int64, copy=False))
    if tables:
        kinds = table.column("kind").combine_chunks()
        # dictionary indices → kind names, without materialising one Python string per row
        names = kinds.dictionary.to_pylist()
        idx = kinds.indices.to_numpy(zero_copy_only=False)
        keys = table.column("key").to_pylist()
        hits = table.column("hits").to_numpy()
        for kind, target in ((KIND_PAGE, agg.pages), (KIND_DOWNLOAD, agg.downloads)):
            if kind in names:
                code = names.index(kind)
                for i in np.flatnonzero(idx == code):
                    target[keys[i]] = int(hits[i])
    return agg


__all__ = ["DayAggregate", "KIND_DOWNLOAD", "KIND_PAGE", "KIND_VISITOR", "day_path", "read_day", "read_day_meta",
           "salt_id", "site_salt", "usage_dir", "visitor_id", "write_day"]
