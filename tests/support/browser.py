"""Debian's Chromium, driven by playwright-core from `scripts/browser/`, for the tests that look at pages.

`require_browser()` skips a test without Chromium or Node, unless CDS_REQUIRE_BROWSER=1 (set by CI) makes
that a failure. `run_job(script, job)` installs the npm packages from their lockfile when they changed (as
`scripts/screenshots.py` does), runs `node scripts/browser/<script> JOB.json` and returns the JSON object the
script prints last.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from support.hooks import ROOT

CHROMIUM = os.environ.get("CDS_CHROMIUM", "/usr/bin/chromium")
BROWSER = ROOT / "scripts" / "browser"


def require_browser() -> None:
    missing = []
    if not Path(CHROMIUM).is_file():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if shutil.which("node") is None or shutil.which("npm") is None:
        missing.append("Node 20 with npm")
    if missing:
        reason = f"the browser test needs {' and '.join(missing)}"
        if os.environ.get("CDS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CDS_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def _install_packages() -> None:
    """The screenshot harness's own installer, so both install the same way from the same lockfile."""
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    harness.install_browser_packages()


def run_job(script: str, job: dict[str, Any], timeout_s: float = 300) -> dict[str, Any]:
    _install_packages()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump({"chromium": CHROMIUM, **job}, file)
    try:
        run = subprocess.run(
            ["node", str(BROWSER / script), file.name],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    finally:
        os.unlink(file.name)
    assert run.returncode == 0, f"{script} failed:\n{run.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result
