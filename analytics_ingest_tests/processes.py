"""Starting and stopping the real Dagster processes in end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, seconds: float, what: str, logs) -> None:
    """Poll ``predicate``; on time-out fail with the tails of the processes' output."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"{what} within {seconds:.0f} s\n{tails}")


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


@contextmanager
def processes():
    """Yields ``start(command, log_path, cwd, env)``; every started process group is ended after."""
    procs = []

    def start(command, log: Path, cwd, env):
        procs.append(subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("wb"),
                                      stderr=subprocess.STDOUT, start_new_session=True))

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
