"""User-action messages → an append-only JSON-lines journal of Matomo events.

The importer delivers each line of a growing file exactly once, so this module only ever
appends, and appends an action at most once (checked by action id against the journal itself,
under an exclusive lock so two harvesters cannot both add the same action). Parsing the journal
into Matomo requests is the importer's log-format job, not this module's.

Line fields: ``action_id``, ``time`` (UTC ISO), ``ip``, ``ua``, ``e_c`` (event category),
``e_a`` (action type), ``e_n`` (episode title, else the media package id), ``mpid``,
``session_id``, ``huid``, ``is_live`` and, when known, ``e_v`` (the action's outpoint, seconds).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError

VIDEO_CATEGORY = "video"


def event_category(action_type: str | None) -> str:
    """``video`` for the player's own actions (FOOTPRINT, HEARTBEAT, PLAY…); for plugin events
    such as ``paella:button:action;…`` the family before the second colon (``paella:button``)."""
    text = (action_type or "").split(";", 1)[0]
    if ":" not in text:
        return VIDEO_CATEGORY
    parts = text.split(":")
    return ":".join(parts[:2])


def event_line(message: dict) -> dict:
    action = message.get("action") or {}
    episode = message.get("episode") or {}
    line = {
        # action_id first: the journal scan below and humans read it at the start of a line.
        "action_id": message.get("action_id"),
        "time": message.get("timestamp"),
        "ip": message.get("ip"),
        "ua": message.get("useragent"),
        "e_c": event_category(action.get("type")),
        "e_a": action.get("type"),
        "e_n": episode.get("title") or message.get("mpid"),
        "mpid": message.get("mpid"),
        "session_id": message.get("session_id"),
        "huid": message.get("huid"),
        "is_live": message.get("is_live", 0),
    }
    if action.get("outpoint") is not None:
        line["e_v"] = action["outpoint"]
    return line


def _journal_ids(fd: int) -> set[str]:
    ids: set[str] = set()
    with os.fdopen(os.dup(fd), "rb") as reader:
        reader.seek(0)
        for raw in reader:
            try:
                ids.add(str(json.loads(raw)["action_id"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line: not ours to judge, the importer reports it
    return ids


def append_to_journal(path: str | os.PathLike, messages: Iterable[dict]) -> int:
    """Append the events of ``messages`` whose action id is not in the journal; return how many."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot open the Matomo event journal {target}: {exc.strerror}; check the path") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        seen = _journal_ids(fd)
        lines = []
        for message in messages:
            key = str(message.get("action_id"))
            if key in seen:
                continue
            seen.add(key)
            lines.append(json.dumps(event_line(message), sort_keys=False, separators=(",", ":")) + "\n")
        if not lines:
            return 0
        size = os.fstat(fd).st_size
        prefix = ""
        if size:
            # A crash could have left a torn last line; start on a fresh line so ours stay whole.
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b"\n":
                prefix = "\n"
        data = (prefix + "".join(lines)).encode("utf-8")
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
        return len(lines)
    finally:
        os.close(fd)  # closing releases the lock
