#!/usr/bin/env bash
# The README's main command: set up, then run the main job on the embedded default
# (SQLite ledger, bundled demo logs, outbox instead of Matomo).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/analytics-ingest demo "$@"
