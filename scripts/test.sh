#!/usr/bin/env bash
# Install (first run, or after the dependencies changed), then lint, type-check, check the layering, validate
# the bundled rules and run every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/ruff check cds_service tests benchmarks scripts
.venv/bin/ruff format --check cds_service tests benchmarks scripts
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
.venv/bin/cds-service validate
.venv/bin/python -m pytest "$@"
