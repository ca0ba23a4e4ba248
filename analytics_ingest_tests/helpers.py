"""Shared test helpers: generated logs, settings pointing at a fake Matomo."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "t0ken-Sekr3t-9f1c"  # searched for in every output by the leak test
SITES = {1: {"name": "Demo", "main_url": "https://example.org", "timezone": "UTC"},
         2: {"name": "Paris", "main_url": "https://fr.example.org", "timezone": "Europe/Paris"}}


def _load_bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_log(path: Path, lines: int, seed: int = 7, **kw) -> dict:
    """Write a generated combined-format log; return its manifest (expected counts)."""
    return _load_bench("gen_logs").generate(str(path), lines, seed=seed, **kw)


def load_manifest(path: Path) -> dict:
    return json.loads(Path(str(path) + ".manifest.json").read_text())
