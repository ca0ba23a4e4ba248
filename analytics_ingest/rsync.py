"""Run the configured rsync pull commands (EEA's ``RSYNC_COMMANDS``) with a timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Sequence

KEEP_OUTPUT = 20_000


@dataclass(frozen=True)
class PullResult:
    command: str
    returncode: int | None
    seconds: float
    output: str
    timed_out: bool


def run_pull_commands(commands: Sequence[str], *, timeout: float = 600.0, env: dict | None = None) -> list[PullResult]:
    """Each command through ``sh -c``, in order; never raises for a failing one."""
    results = []
    for command in commands:
        started = time.monotonic()
        proc = subprocess.Popen(["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        timed_out = False
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # rsync and ssh children too
            out, _ = proc.communicate()
        text = out.decode("utf-8", "replace")[-KEEP_OUTPUT:]
        results.append(PullResult(command, None if timed_out else proc.returncode,
                                  time.monotonic() - started, text, timed_out))
    return results
