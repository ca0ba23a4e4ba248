"""Where messages go: an SQS queue (as the original) or JSON lines (a file or stdout).

Every message carries its action id so a consumer can de-duplicate: as a message attribute on
SQS (and, on FIFO queues, as ``MessageDeduplicationId``, which makes SQS drop a re-send within
its 5-minute window by itself).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ..errors import ConfigError, DeliveryError

SQS_BATCH = 10  # send_message_batch's limit
SQS_BATCH_BYTES = 256 * 1024  # the classic payload limit of one batch request; stay under it


class Sink(Protocol):
    def write(self, messages: Sequence[dict]) -> int: ...

    def close(self) -> None: ...


def _body(message: dict) -> str:
    return json.dumps(message, sort_keys=True, separators=(",", ":"), default=str)


class SqsSink:
    """``send_message_batch`` in groups of 10; only the entries SQS reports failed are retried."""

    def __init__(self, queue: str, client=None, *, max_attempts: int = 5, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if client is None:
            import boto3

            client = boto3.client("sqs")
        self.client = client
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self._sleep = sleep
        self.queue_url = self._resolve(queue)
        self.fifo = self.queue_url.endswith(".fifo")
        self.delivered = 0

    def _resolve(self, queue: str) -> str:
        from botocore.exceptions import ClientError

        if queue.startswith("https://"):
            return queue
        name = queue[len("sqs://"):] if queue.startswith("sqs://") else queue
        try:
            return self.client.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            # The original created the queue when missing; a typo would then feed a queue nobody reads.
            raise ConfigError(f"SQS queue {name!r} not found ({code or 'error'}); create it or fix --output") from None

    def _entry(self, n: int, message: dict) -> dict:
        action_id = str(message.get("action_id"))
        entry = {
            "Id": str(n),
            "MessageBody": _body(message),
            "MessageAttributes": {"action_id": {"DataType": "String", "StringValue": action_id}},
        }
        if self.fifo:
            entry["MessageDeduplicationId"] = action_id
            # One group per media package: order matters (if at all) within a lecture, and
            # separate groups let several consumers work in parallel.
            entry["MessageGroupId"] = str(message.get("mpid") or "opencast")
        return entry

    def _batches(self, entries: list[dict]) -> list[list[dict]]:
        batches: list[list[dict]] = []
        current: list[dict] = []
        size = 0
        for entry in entries:
            entry_size = len(entry["MessageBody"].encode()) + 64
            if current and (len(current) == SQS_BATCH or size + entry_size > SQS_BATCH_BYTES):
                batches.append(current)
                current, size = [], 0
            current.append(entry)
            size += entry_size
        if current:
            batches.append(current)
        return batches

    def write(self, messages: Sequence[dict]) -> int:
        entries = [self._entry(n, m) for n, m in enumerate(messages)]
        for batch in self._batches(entries):
            self._send(batch)
        self.delivered += len(messages)
        return len(messages)

    def _send(self, batch: list[dict]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        pending = batch
        permanent: list[str] = []
        last_code = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=pending)
            except (ClientError, BotoCoreError) as exc:
                # The whole call failed (throttling, network): retry all of it.
                last_code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
                failed_ids = {e["Id"] for e in pending}
            else:
                failed = response.get("Failed") or []
                # Sender faults (e.g. too large) will fail again the same way: do not retry them.
                permanent += [f["Id"] for f in failed if f.get("SenderFault")]
                failed_ids = {f["Id"] for f in failed if not f.get("SenderFault")}
                if failed:
                    last_code = failed[0].get("Code", "")
            pending = [e for e in pending if e["Id"] in failed_ids]
            if not pending:
                break
            if attempt < self.max_attempts:
                self._sleep(self.backoff * 2 ** (attempt - 1))
        if pending or permanent:
            raise DeliveryError(
                f"SQS took {len(batch) - len(pending) - len(permanent)} of {len(batch)} messages of a batch "
                f"({len(permanent)} refused, {len(pending)} still failing after {self.max_attempts} attempts, "
                f"last code {last_code or '?'}); the cursor was not advanced, rerun to resend"
            )

    def close(self) -> None:
        pass


class JsonLinesSink:
    """One JSON object per line; each batch is a single append, so lines never interleave."""

    def __init__(self, path: str | os.PathLike = "-") -> None:
        self.path = str(path)
        self.delivered = 0
        self._fd: int | None = None
        if self.path != "-":
            target = Path(self.path)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ConfigError(f"cannot open output {self.path}: {exc.strerror}; check the path") from None

    def write(self, messages: Sequence[dict]) -> int:
        if not messages:
            return 0
        data = "".join(_body(m) + "\n" for m in messages)
        if self._fd is None:
            sys.stdout.write(data)
            sys.stdout.flush()
        else:
            # O_APPEND + one write: concurrent appenders cannot split our batch on a local file.
            raw = data.encode("utf-8")
            written = 0
            while written < len(raw):
                written += os.write(self._fd, raw[written:])
        self.delivered += len(messages)
        return len(messages)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def looks_like_queue(output: str) -> bool:
    return output.startswith("sqs://") or output.startswith("https://sqs.") or (
        output.startswith("https://") and ".amazonaws.com/" in output and "sqs" in output)


def make_sink(output: str, *, sqs_client=None) -> SqsSink | JsonLinesSink:
    """``sqs://name`` or an SQS queue URL → SQS; ``-`` → stdout; anything else → a file path."""
    if not output:
        raise ConfigError("no output given: pass --output sqs://QUEUE, a file path, or - for stdout")
    if looks_like_queue(output):
        return SqsSink(output, sqs_client)
    return JsonLinesSink(output)
