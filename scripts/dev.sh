#!/usr/bin/env bash
# Start Dagster (UI on http://127.0.0.1:3000 + daemon) on the embedded default: SQLite storage,
# the demo site and logs, and the outbox instead of Matomo while MATOMO_URL is unset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.analytics_ingest/dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
exec .venv/bin/dagster dev -w workspace.yaml "$@"
