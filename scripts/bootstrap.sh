#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install the service with its test tools, pinned by requirements/dev.txt,
# only when needed: .venv missing, or pyproject.toml or the lock changed since the last install. Otherwise it
# does nothing and needs no network, so a second start works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Python 3.11 or newer is required (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
}
./scripts/capture.sh  # the capture app's libraries (npm, from its lockfile), only when they changed
stamp=.venv/.installed
wanted=$(cat pyproject.toml requirements/dev.txt requirements/build.in | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
echo "bootstrap: installing into .venv from requirements/dev.txt" >&2
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --require-hashes -r requirements/dev.txt
"${pip[@]}" --no-deps --no-build-isolation -e .
echo "$wanted" >"$stamp"
