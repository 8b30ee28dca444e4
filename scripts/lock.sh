#!/usr/bin/env bash
# Re-pin every dependency after changing them in pyproject.toml: requirements/service.txt (what the image
# installs) and requirements/dev.txt (the same versions, plus the test tools and the [report] and [bench]
# extras; what bootstrap.sh installs for the two commands and CI). Both carry hashes; uv resolves for every platform.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh >/dev/null
[ -x .venv/bin/uv ] || .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
uv=(.venv/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes --no-header)
"${uv[@]}" pyproject.toml -o requirements/service.txt "$@"
"${uv[@]}" pyproject.toml requirements/build.in --extra test --extra report --extra bench \
  --constraint requirements/service.txt -o requirements/dev.txt "$@"
echo "locked: $(grep -c '==' requirements/service.txt) service, $(grep -c '==' requirements/dev.txt) dev packages"
