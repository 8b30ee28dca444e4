#!/usr/bin/env bash
# Install (first run), then lint and run every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/ruff check cds_service tests benchmarks
.venv/bin/ruff format --check cds_service tests benchmarks
.venv/bin/cds-service validate
.venv/bin/python -m pytest "$@"
