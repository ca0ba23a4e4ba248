"""Each imported file's tracked hits in columns, so later stages read columns, not logs.

The pretable, the usage aggregate and the archive check all need "the hits imported into day D".
Re-reading and re-parsing the day's logs for each of them cost more than the import itself (a
parse is ~300k lines/s; these stages are meant to run at ≥500k rows/s). So the import keeps, per
file, what it parsed: ``<home>/hits/<file id>/``, parts of the file's tracked lines in line order
(``part-<first line>.part``) and a ``store.json`` that says what they were built from.

Parts are written by whoever parsed the lines: the import's worker processes for a big file, else
the importing process. They are plain ``marshal`` records with the text columns dictionary-encoded
in Python, so that writing them needs no pyarrow: the import's processes stay as small and as
quick to start as before. Readers turn them into Arrow tables (:func:`read_part`).

It is a **cache, not a record of delivery**: it holds every tracked hit of the file as parsed under
the file's plan, whether or not it reached Matomo yet. What reached Matomo stays the ledger's
business: readers take the file's day and leave out the lines Matomo rejected
(:mod:`.day_hits`). A store belongs to one content and one plan (:func:`store_key`: the file's
fingerprint, size and plan); one that does not match -- a file that grew, an older format, a
store lost with the disk, a file imported before stores existed -- is rebuilt by re-reading the
log, once.

Whole or not at all: parts go to a temporary folder that is renamed into place only after a scan
that read the whole file, so an interrupted import leaves no half store where readers look.
"""

from __future__ import annotations

import errno
import hashlib
import json
import marshal
import os
import re
import shutil
import socket
import struct
import uuid
from itertools import count
from operator import itemgetter
from pathlib import Path

from ..errors import InputError
from ..hits import Hit, is_event
from ..vocabulary import DOWNLOADS

FORMAT_VERSION = 4
MANIFEST = "store.json"
PART_SUFFIX = ".part"
# a writer's folders: .<file id>.tmp-<host>.<pid>.<nonce> (and .old- while it publishes)
_LEFTOVER = re.compile(r"\.(?:tmp|old)-(.+)\.(\d+)\.[0-9a-f]{8}")
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"
BATCH_HITS = 65_536  # hits per part when one process writes them all; readers read this many at a time
# The columns, in order. ``time`` is the hit's UTC time (Matomo's ``cdt``); ``download`` its
# category (else a page view); ``bot`` the classifier's bot flag (tracked with enable_bots);
# ``event`` a Matomo event (a CloudFront RTMP or replayed ``e_c`` hit).
COLUMNS = ("line_no", "time", "ip", "user_agent", "user_id", "host", "path", "download", "bot", "event")
# Text columns, dictionary-encoded in a part: a day repeats its agents, addresses, hosts and paths.
TEXT_COLUMNS = ("time", "ip", "user_agent", "user_id", "host", "path")


def store_path(directory: str | os.PathLike, file_id: int) -> Path:
    return Path(directory) / str(int(file_id))


def store_key(fingerprint: str | None, size: int | None, plan: str | None) -> str:
    """What a store was built from: the file's content (fingerprint and size) and its plan."""
    raw = json.dumps([FORMAT_VERSION, fingerprint, size, plan], sort_keys=True)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def record_key(record) -> str:
    return store_key(record.fingerprint, record.size, record.plan)


class HitColumns:
    """Tracked hits gathered as rows, one tuple of :data:`COLUMNS` per hit (:attr:`add`, or
    :attr:`on_tracked` for a Hit), then :meth:`encode`. Only the hits' field values are kept,
    never the Hit objects: a few thousand live objects per job would make the garbage collector
    rescan them again and again (it doubled a worker's time); a tuple of strings and numbers
    leaves its first collection untracked."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []
        #: ``add((line_no, time, ip, user_agent, user_id, host, path, download, bot, event))``
        self.add = add = self._rows.append

        def on_tracked(hit: Hit, category: str, is_bot: bool) -> None:
            add((hit.line_no, hit.cdt, hit.ip, hit.user_agent, hit.user_id, hit.host, hit.path,
                 category == DOWNLOADS, is_bot, hit.extra is not None and is_event(hit)))

        self.on_tracked = on_tracked

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def first_line(self) -> int:
        return self._rows[0][0]

    def encode(self) -> dict:
        """The hits gathered so far as one part (see :func:`write_part`); starts afresh.

        Text columns are dictionary-encoded here, in plain Python, so that the worker processes
        that write parts never load pyarrow (it would cost each of them ~130 MB and a third of a
        second): the distinct values once, then one 32-bit index per hit."""
        lines, times, ips, agents, users, hosts, paths, downloads, bots, events = zip(*self._rows)
        n = len(lines)
        # struct and bytes() take a tuple of ints whole; array() parses each item as an argument
        part: dict = {"format": FORMAT_VERSION, "rows": n, "line_no": struct.pack(f"{n}q", *lines)}
        for name, values in zip(TEXT_COLUMNS, (times, ips, agents, users, hosts, paths)):
            distinct = list(dict.fromkeys(values))  # in order of first appearance
            codes = dict(zip(distinct, count()))
            # itemgetter looks all the values up in one call (a tuple; one value: the value)
            indices = itemgetter(*values)(codes) if len(values) > 1 else (codes[values[0]],)
            part[name] = (struct.pack(f"{n}i", *indices), _valid_texts(distinct))
        for name, values in (("download", downloads), ("bot", bots), ("event", events)):
            part[name] = bytes(values)  # bools: one byte each, 0 or 1
        self.clear()
        return part

    def clear(self) -> None:
        self._rows.clear()


def write_part(directory: str | os.PathLike, columns: HitColumns) -> tuple[str, dict] | None:
    """Write the hits gathered in ``columns`` as one part in ``directory`` (a writer's
    :attr:`HitStoreWriter.parts_dir`); return its name and what the manifest says of it (rows,
    first and last time), or None when there were no hits. Called by worker processes for their
    job, and by :class:`HitStoreWriter`. A part is one ``marshal`` record: our own file, read only
    by :func:`read_part`; it names the writer's folder, so parts of two stores never mix."""
    if not len(columns):
        return None
    directory = Path(directory)
    name = f"part-{columns.first_line:012d}{PART_SUFFIX}"
    part = columns.encode()
    part["store"] = directory.name
    times = part["time"][1]
    entry = {"rows": part["rows"], "first": min(times), "last": max(times)}
    with open(directory / name, "wb") as fh:
        fh.write(marshal.dumps(part))
    return name, entry


def _valid_texts(values: list[str]) -> list[str]:
    """:func:`_valid_text` of each value; checked all at once first (nearly always all valid)."""
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        return [_valid_text(v) for v in values]
    return values


def _valid_text(value: str) -> str:
    """Text Arrow can hold: a lone surrogate (a JSON log's ``\\ud83d``) becomes U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def read_part(path: Path, store: str, rows: int):
    """One part as an Arrow table of :data:`COLUMNS` (text columns as dictionaries). Raises
    :class:`~analytics_ingest.errors.InputError` (one line) for a damaged part, or one that is not
    of the store being read (``store``: the manifest's, ``rows``: what it says the part holds)."""
    import numpy as np
    import pyarrow as pa

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"the hit store {path.parent} was replaced while it was read (the file was imported "
                         "again meanwhile); run this step again") from None
    try:
        part = marshal.loads(raw)
        if not isinstance(part, dict) or part.get("format") != FORMAT_VERSION:
            raise ValueError("not a part of this format")
        if part.get("store") != store:
            raise InputError(f"the hit store {path.parent} was replaced while it was read (the file was imported "
                             "again meanwhile); run this step again")
        arrays = {"line_no": pa.array(np.frombuffer(part["line_no"], np.int64))}
        for name in TEXT_COLUMNS:
            raw_index, values = part[name]
            index = pa.array(np.frombuffer(raw_index, np.int32))
            if name == "time":
                # "YYYY-MM-DD HH:MM:SS" in UTC: parsed without a zone, then labelled UTC (no shift)
                stamps = pa.array(values, pa.string()).cast(pa.timestamp("s")).cast(pa.timestamp("s", tz="UTC"))
                arrays[name] = stamps.take(index)
            else:
                arrays[name] = pa.DictionaryArray.from_arrays(index, pa.array(values, pa.string()))
        for name in ("download", "bot", "event"):
            arrays[name] = pa.array(np.frombuffer(part[name], np.int8).astype(bool))
        if any(len(a) != rows for a in arrays.values()):
            raise ValueError(f"{len(arrays['line_no'])} rows where the store lists {rows}")
    except InputError:
        raise
    except (OSError, EOFError, ValueError, TypeError, KeyError, pa.ArrowInvalid) as exc:
        raise InputError(f"hit store part {path} is damaged ({exc}); delete the folder {path.parent}: it is "
                         "rebuilt from the log") from None
    return pa.table([arrays[name] for name in COLUMNS], names=list(COLUMNS))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HitStoreWriter:
    """Builds a file's store in a temporary folder and publishes it with :meth:`commit`.

    Hits arrive one at a time (:attr:`on_tracked`, the sequential scan), or worker processes write
    parts into :attr:`parts_dir` themselves and report them with :meth:`add_part`."""

    def __init__(self, path: str | os.PathLike, key: str) -> None:
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sweep()
        # host, process and a nonce: writers on several machines may share the state directory,
        # and two writers may share a process
        self._nonce = f"{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.parts_dir = self.path.with_name(f".{self.path.name}.tmp-{self._nonce}")
        self.parts_dir.mkdir()
        self._pending = HitColumns()
        self._parts: dict[str, dict] = {}
        self.hits = 0
        self.broken = False  # a part could not be written: the store will not be published
        pending = self._pending
        gather = pending.on_tracked
        flush = self._flush_pending

        def on_tracked(hit: Hit, category: str, is_bot: bool) -> None:
            gather(hit, category, is_bot)
            if len(pending) >= BATCH_HITS:
                flush()

        self.on_tracked = on_tracked

    def _sweep(self) -> None:
        """Remove what a killed writer of this store on this host left behind (a live one, or one
        on another host, keeps its own)."""
        for leftover in self.path.parent.glob(f".{self.path.name}.*-*"):
            found = _LEFTOVER.fullmatch(leftover.name[len(self.path.name) + 1:])
            if found and found.group(1) == _HOST and int(found.group(2)) != os.getpid() \
                    and not _alive(int(found.group(2))):
                shutil.rmtree(leftover, ignore_errors=True)

    def _flush_pending(self) -> None:
        try:
            self.add_part(write_part(self.parts_dir, self._pending))
        except OSError:  # a full disk must not stop an import: the store is only a cache
            self._pending.clear()
            self.broken = True

    def add_part(self, written: tuple[str, dict] | None | int) -> None:
        """A part was written into :attr:`parts_dir` (``write_part``'s answer; -1: it could not be)."""
        if written == -1:
            self.broken = True
        elif written:
            name, entry = written
            self._parts[name] = entry
            self.hits += entry["rows"]

    def commit(self) -> bool:
        """Publish the store in place of any older one (a file without hits has a store too);
        False when a part could not be written (nothing is published)."""
        self._flush_pending()
        if self.broken:
            self.abort()
            return False
        manifest = {"format": FORMAT_VERSION, "key": self.key, "store": self.parts_dir.name, "hits": self.hits,
                    "parts": self._parts}
        (self.parts_dir / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        old = self.path.with_name(f".{self.path.name}.old-{self._nonce}")
        try:
            os.rename(self.path, old)
        except FileNotFoundError:
            old = None
        try:
            os.rename(self.parts_dir, self.path)
        except OSError as exc:
            # Another writer of the same file (an import and a reader's rebuild) published between
            # our two renames. Its store stands if it was built from the same content and plan.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or open_store(self.path, self.key) is None:
                raise
            shutil.rmtree(self.parts_dir, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return True

    def abort(self) -> None:
        self._pending.clear()
        shutil.rmtree(self.parts_dir, ignore_errors=True)


class HitStore:
    """A published store: its parts as its manifest lists them, read a few at a time."""

    def __init__(self, path: Path, manifest: dict) -> None:
        self.path = path
        self.store = manifest["store"]
        self.parts: dict[str, dict] = manifest["parts"]
        self.hits = int(manifest["hits"])

    def tables(self, columns, start=None, end=None):
        """Tables of about :data:`BATCH_HITS` rows with ``columns``, in line order. With ``start``
        and ``end`` (UTC datetimes), parts whose times all fall outside [start, end) are not read."""
        import pyarrow as pa

        low = start.strftime("%Y-%m-%d %H:%M:%S") if start is not None else None
        high = end.strftime("%Y-%m-%d %H:%M:%S") if end is not None else None
        waiting, rows = [], 0
        for name in sorted(self.parts):
            entry = self.parts[name]
            if low is not None and (entry["last"] < low or entry["first"] >= high):
                continue  # "YYYY-MM-DD HH:MM:SS" in UTC sorts as time does
            table = read_part(self.path / name, self.store, entry["rows"]).select(list(columns))
            waiting.append(table)
            rows += table.num_rows
            if rows >= BATCH_HITS:
                yield pa.concat_tables(waiting).combine_chunks()
                waiting, rows = [], 0
        if waiting:
            yield pa.concat_tables(waiting).combine_chunks()


def open_store(path: str | os.PathLike, key: str) -> HitStore | None:
    """The store at ``path`` when it was built for ``key``, else None (missing, unreadable, or
    built from another content, plan or format)."""
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or manifest.get("key") != key:
        return None
    parts = manifest.get("parts")
    if not isinstance(parts, dict) or not isinstance(manifest.get("store"), str):
        return None
    return HitStore(path, manifest)
