"""Real services for tests: PostgreSQL, MariaDB and Redis on loopback.

A test that needs one skips with a clear reason when it is absent, except under ``CI=true``,
where the service must be there and its absence fails the test.
"""

from __future__ import annotations

import os
import socket

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
MARIADB_HOST, MARIADB_PORT = "127.0.0.1", 3306
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, under CI=true, fail) when ``name`` is not listening on ``host:port``."""
    if port_open(host, port):
        return
    message = f"{name} is not listening on {host}:{port}"
    if in_ci():
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(f"{message}; start it to run this test")
