#!/usr/bin/env bash
# Create ./.venv with the project and its dev extras, once; later calls only reinstall when
# pyproject.toml changed. Used by the README's two commands and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Byte-compile the project as a non-editable pip install would: where PYTHONDONTWRITEBYTECODE is
# set (some shells and containers), Python would otherwise compile every module on every run,
# ~0.1 s of each command's start-up. Up-to-date files are skipped.
.venv/bin/python -m compileall -q analytics_ingest >/dev/null
