#!/usr/bin/env bash
# The README's main command: set up, then start Dagster (UI on http://127.0.0.1:3000 + daemon)
# on the embedded default: SQLite storage, the demo site and its logs, and an outbox instead of
# Matomo while MATOMO_URL is unset. The demo sensor is on: both demo days reach Loaded within
# about a minute. Stop with Ctrl-C.
set -euo pipefail
exec "$(dirname "$0")/dev.sh" "$@"
