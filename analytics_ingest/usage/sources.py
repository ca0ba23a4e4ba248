"""The other per-day outputs a usage report sums when they exist: COUNTER item tables and the
Opencast user actions harvested for a day.

Both are optional; a day without one is reported as missing for that source, never as zero.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import write_text
from ..errors import InputError

# The COUNTER item table's metric columns (analytics_ingest.counter writes them; named here so a
# report does not depend on the COUNTER engine's internals).
COUNTER_METRICS = ("Total_Item_Investigations", "Unique_Item_Investigations", "Total_Item_Requests",
                   "Unique_Item_Requests")


def counter_items_path(settings, site, day: dt.date) -> Path:
    return Path(settings.home) / "counter" / site.key / f"{day.isoformat()}-items.parquet"


def read_counter_items(path: Path) -> list[tuple[str, str, tuple[int, ...]]]:
    """(item, title, metrics) rows of one day's COUNTER item table."""
    try:
        table = pq.read_table(path, columns=["item", "title", *COUNTER_METRICS])
    except (OSError, pa.ArrowInvalid, KeyError) as exc:
        raise InputError(f"cannot read COUNTER table {path}: {exc}; recompute that day's COUNTER metrics") from None
    items = table.column("item").to_pylist()
    titles = table.column("title").to_pylist()
    metrics = [table.column(m).to_pylist() for m in COUNTER_METRICS]
    return [(items[i], titles[i] or "", tuple(int(col[i] or 0) for col in metrics)) for i in range(len(items))]


# -- Opencast ------------------------------------------------------------------------------------
def opencast_actions_path(settings, day: dt.date, output: str | None = None) -> Path | None:
    """Where the harvester wrote ``day``'s actions (None when it writes to a queue); ``output``: the
    usage settings' ``opencast_output`` (None: the harvester's default file under the home)."""
    template = output or str(Path(settings.home) / "opencast" / "useractions" / "{day}.jsonl")
    if template.startswith(("sqs://", "https://sqs.")) or template == "-":
        return None
    return Path(template.replace("{day}", day.isoformat()))


def opencast_day_counts(settings, day: dt.date, output: str | None = None) -> dict | None:
    """``{"actions": n, "types": {type: n}}`` for ``day`` (distinct ``action_id``s; a line without
    one counts once), or None when the day has no actions file.

    Counts are cached beside the usage aggregates, keyed by the file's size and mtime, so a long
    window does not re-parse every day's JSON lines each time.
    """
    path = opencast_actions_path(settings, day, output)
    if path is None:
        return None
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    signature = [st.st_size, st.st_mtime_ns]
    cache = Path(settings.home) / "usage" / "_opencast" / f"{day.isoformat()}.json"
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("signature") == signature:
            return cached["counts"]
    except (OSError, ValueError, KeyError):
        pass
    seen: set[str] = set()
    types: Counter = Counter()
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue  # a torn last line of a file being written: not an action yet
                if not isinstance(msg, dict):
                    continue
                action_id = msg.get("action_id")
                if action_id is not None:
                    if str(action_id) in seen:
                        continue  # the harvest window is inclusive: an action may repeat
                    seen.add(str(action_id))
                action = msg.get("action") if isinstance(msg.get("action"), dict) else {}
                types[str(action.get("type") or "unknown")] += 1
    except OSError as exc:
        raise InputError(f"cannot read Opencast actions {path}: {exc.strerror or exc}; check permissions") from None
    counts = {"actions": sum(types.values()), "types": dict(types)}
    try:
        write_text(cache, json.dumps({"signature": signature, "counts": counts}))
    except OSError:
        pass  # a cache we cannot write only costs time
    return counts


__all__ = ["COUNTER_METRICS", "counter_items_path", "opencast_actions_path", "opencast_day_counts",
           "read_counter_items"]
