#!/usr/bin/env bash
# Install (first run) and start the service on port 8000 with the bundled plan definitions and SQLite.
# Arguments go to `cds-service serve`: `--dev` for local use without JWT verification (127.0.0.1 only).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/cds-service serve "$@"
