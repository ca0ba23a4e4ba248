"""Fixtures shared by the tests that talk to the fake Matomo (a module may define its own)."""

from __future__ import annotations

import pytest

from analytics_ingest.config import load_settings
from analytics_ingest_tests.fake_matomo import FakeMatomo
from analytics_ingest_tests.helpers import SITES, TOKEN


@pytest.fixture
def fake():
    """The fake Matomo with the two test sites; no request may have surprised it."""
    with FakeMatomo(token=TOKEN, sites=SITES) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def settings(tmp_path, fake):
    """Engine settings pointing at ``fake``, with a fresh home under ``tmp_path``."""
    return load_settings(home=tmp_path / "home", matomo_url=fake.url, matomo_token=TOKEN, environ={})
