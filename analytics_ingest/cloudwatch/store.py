"""Keep the fetched events of a site-day as JSON lines: locally or in S3.

One file per site and day, ``<site_key>/<YYYY-MM-DD>.jsonl``, one :class:`CloudEvent` per line,
sorted by time and unique by id. Saving *merges* with what is stored (a re-fetch adds what is
new and never drops or doubles an event) and replaces the file in one step: a temporary file
renamed over it locally, one ``put_object`` in S3 (S3 never shows a half-written object).

Location: ``<ANALYTICS_INGEST_HOME>/cloudwatch`` by default, or ``s3://bucket/prefix`` given
explicitly or by ``ANALYTICS_INGEST_CLOUDWATCH_S3``. The S3 client is any boto3-compatible one
(``get_object``/``put_object``), e.g. what the Dagster layer's S3 resource returns. Local saves
of one site-day are serialised with a lock file; S3 saves are not (no cross-host lock): run one
fetch per site-day at a time (the Dagster layer's per-site pool does).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..atomic import write_bytes
from ..errors import ConfigError, InputError
from .events import CloudEvent, unique_sorted

ENV_S3 = "ANALYTICS_INGEST_CLOUDWATCH_S3"
_SITE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def check_site_key(site_key: str) -> str:
    """Site keys become path parts: letters, digits, ``_`` and ``-`` only (no ``..``, no ``/``)."""
    if not isinstance(site_key, str) or not _SITE_KEY.fullmatch(site_key):
        raise ConfigError(f"site key {str(site_key)[:40]!r} must be letters, digits, '_' or '-'; fix the site's key")
    return site_key


def day_text(day) -> str:
    if isinstance(day, dt.datetime):
        day = day.date()
    if isinstance(day, dt.date):
        return day.isoformat()
    try:
        return dt.date.fromisoformat(str(day)).isoformat()
    except ValueError:
        raise InputError(f"day {str(day)[:40]!r} is not a date; write YYYY-MM-DD") from None


def encode(events) -> bytes:
    return "".join(json.dumps(e.as_dict(), ensure_ascii=False) + "\n" for e in events).encode("utf-8")


def decode(data: bytes, where: str) -> list[CloudEvent]:
    events = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(CloudEvent.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{where}: line {number} is not a stored CloudWatch event; move the file away "
                             "and fetch the day again") from None
    return events


@dataclass
class SaveResult:
    location: str
    added: int  # events that were not stored yet
    total: int  # events stored now


@contextmanager
def _locked(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` so that a reader sees the old or the new content, never a mix."""
    write_bytes(path, data)


class EventStore:
    """Where the fetched events of each site-day live (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, *, s3_client=None) -> None:
        text = str(root)
        self.s3 = text.startswith("s3://")
        if self.s3:
            parts = urlsplit(text)
            if not parts.netloc:
                raise ConfigError(f"{ENV_S3} must look like s3://bucket/prefix, got {text[:80]!r}")
            self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
            self._client = s3_client
        else:
            self.root = Path(text)

    @classmethod
    def from_settings(cls, settings, *, s3_url: str | None = None, s3_client=None) -> "EventStore":
        """``s3_url``: the CloudWatch settings' ``events_s3``; None keeps the events under the home."""
        return cls(s3_url if s3_url else Path(settings.home) / "cloudwatch", s3_client=s3_client)

    # -- where -------------------------------------------------------------------------------------
    def _key(self, site_key: str, day) -> str:
        name = f"{check_site_key(site_key)}/{day_text(day)}.jsonl"
        return f"{self.prefix}/{name}" if self.prefix else name

    def location(self, site_key: str, day) -> str:
        if self.s3:
            return f"s3://{self.bucket}/{self._key(site_key, day)}"
        return str(self.root / check_site_key(site_key) / f"{day_text(day)}.jsonl")

    @property
    def client(self):
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    # -- read / write ------------------------------------------------------------------------------
    def load(self, site_key: str, day) -> list[CloudEvent]:
        """The stored events of the site-day (empty if none)."""
        where = self.location(site_key, day)
        if self.s3:
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(site_key, day))["Body"].read()
            except Exception as exc:  # noqa: BLE001 - "not there" is a normal answer
                code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
                if code in ("NoSuchKey", "404", "NotFound"):
                    return []
                raise ConfigError(f"cannot read {where} ({code or type(exc).__name__}); check the bucket "
                                  "and the permissions") from None
            return decode(body, where)
        path = Path(where)
        try:
            return decode(path.read_bytes(), where)
        except FileNotFoundError:
            return []

    def save(self, site_key: str, day, events) -> SaveResult:
        """Merge ``events`` into the stored site-day and replace it atomically."""
        where = self.location(site_key, day)
        if self.s3:
            return self._merge_and_put(site_key, day, events, where)
        path = Path(where)
        with _locked(path.with_name(path.name + ".lock")):
            stored = self.load(site_key, day)
            merged = unique_sorted([*stored, *events])
            if len(merged) != len(stored) or not path.exists():
                write_atomically(path, encode(merged))
        return SaveResult(where, len(merged) - len(stored), len(merged))

    def _merge_and_put(self, site_key: str, day, events, where: str) -> SaveResult:
        stored = self.load(site_key, day)
        merged = unique_sorted([*stored, *events])
        if len(merged) != len(stored):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._key(site_key, day), Body=encode(merged),
                                       ContentType="application/x-ndjson")
            except Exception as exc:  # noqa: BLE001
                code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) or type(exc).__name__
                raise ConfigError(f"cannot write {where} ({code}); check the bucket and the permissions") from None
        return SaveResult(where, len(merged) - len(stored), len(merged))


__all__ = ["ENV_S3", "EventStore", "SaveResult", "check_site_key", "day_text", "write_atomically"]
