"""Run the configured pull commands (EEA's ``RSYNC_COMMANDS``) with a timeout.

Each command runs through ``sh -c`` in its own process group, with no standard input (an ``ssh``
asking for a password fails instead of hanging) and stdout+stderr captured together (the last
20,000 characters are kept). On timeout the whole group (``rsync``, its ``ssh``) gets SIGTERM,
then SIGKILL two seconds later. A failing command never raises: its exit code and output are in
its :class:`PullResult`.

Secrets stay out of the configuration and the results: write ``${RSYNC_PASSWORD}`` in a command,
let the shell expand it from the environment, and the result keeps the unexpanded text; values
of the variables a command names are masked (``***``) in its captured output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

KEEP_OUTPUT = 20_000  # characters of output kept (the end)
TERM_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
_VAR_REF = re.compile(r"\$(?:\{(\w+)[^}]*\}|(\w+))")
_NOT_SECRET = frozenset({"HOME", "PATH", "PWD", "USER", "LOGNAME", "SHELL", "TMPDIR", "HOSTNAME", "LANG"})
_MIN_MASKED = 4  # shorter values are not masked (they would mask random bits of output)


@dataclass(frozen=True)
class PullResult:
    command: str  # as configured (unexpanded)
    returncode: int | None  # None when it timed out or could not start; negative: killed by that signal
    seconds: float
    output: str  # stdout and stderr, interleaved, last KEEP_OUTPUT characters, secrets masked
    timed_out: bool


ENV_CRON = "ANALYTICS_INGEST_RSYNC_CRON"  # when the pulls run (the Dagster schedule)
ENV_TIMEOUT = "ANALYTICS_INGEST_RSYNC_TIMEOUT"  # seconds per command
DEFAULT_TIMEOUT = 900.0


def run_pull_commands(commands: Sequence[str], *, timeout: float = 600.0, env: dict | None = None) -> list[PullResult]:
    """Run each command through ``sh -c``, in order, each with ``timeout`` seconds.

    ``env``: variables added to (overriding) this process's environment, e.g. secrets the
    commands name as ``${VAR}``. Never raises for a failing command.
    """
    environment = dict(os.environ)
    if env:
        environment.update({str(k): str(v) for k, v in env.items()})
    return [_run(command, timeout, environment) for command in commands]


def _run(command: str, timeout: float, env: dict) -> PullResult:
    started = time.monotonic()
    deadline = started + max(0.0, timeout)
    try:
        proc = subprocess.Popen(
            ["sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )
    except OSError as exc:
        return PullResult(command, None, time.monotonic() - started, f"cannot start sh: {exc}", False)
    reader = _TailReader(proc.stdout)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop_group(proc, reader)
    # The shell is gone; something it started in the background may still hold the pipe.
    reader.join(max(0.0, deadline - time.monotonic()))
    if reader.is_alive():
        timed_out = True
        _stop_group(proc, reader)
    if not reader.is_alive():  # else a detached process still holds the pipe: leave the reader to it
        proc.stdout.close()
    output = _mask(reader.text(), command, env)
    if timed_out:
        output += f"\n[timed out after {timeout:g} s: process group killed]"
    return PullResult(command, None if timed_out else proc.returncode, time.monotonic() - started,
                      output[-KEEP_OUTPUT:], timed_out)


def _stop_group(proc: subprocess.Popen, reader: threading.Thread) -> None:
    """SIGTERM the command's process group; SIGKILL it if the shell or a holder of its output pipe
    is still there after a grace period (zombies waiting for their reaper do not count)."""
    _signal_group(proc, signal.SIGTERM)
    end = time.monotonic() + TERM_GRACE
    try:
        proc.wait(timeout=TERM_GRACE)
    except subprocess.TimeoutExpired:
        pass
    reader.join(max(0.0, end - time.monotonic()))
    if proc.poll() is None or reader.is_alive():
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
        reader.join(TERM_GRACE)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone


class _TailReader(threading.Thread):
    """Reads a pipe to its end, keeping only the last bytes (bounded memory for chatty commands)."""

    KEEP_BYTES = 4 * KEEP_OUTPUT  # enough for KEEP_OUTPUT characters of UTF-8

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.buffer = bytearray()

    def run(self) -> None:
        fd = self.stream.fileno()
        keep = self.KEEP_BYTES
        buffer = self.buffer
        while True:
            try:
                block = os.read(fd, 65536)
            except OSError:
                break
            if not block:
                break
            buffer += block
            if len(buffer) > 2 * keep:
                del buffer[:-keep]

    def text(self) -> str:
        return bytes(self.buffer[-self.KEEP_BYTES :]).decode("utf-8", "replace")


def _mask(output: str, command: str, env: dict) -> str:
    for match in _VAR_REF.finditer(command):
        name = match.group(1) or match.group(2)
        value = env.get(name)
        if name not in _NOT_SECRET and value and len(value) >= _MIN_MASKED:
            output = output.replace(value, "***")
    return output
