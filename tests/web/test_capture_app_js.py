"""The capture app's JavaScript logic (which items it shows, which answers it sends), run by Node's own test
runner: tests/web/capture_app.test.mjs."""

from __future__ import annotations

import shutil
import subprocess

from support.browser import require_browser
from support.hooks import ROOT


def test_the_capture_apps_logic_passes_its_node_tests() -> None:
    require_browser()  # Node is what it needs; CI requires it
    node = shutil.which("node")
    assert node is not None
    run = subprocess.run(
        [node, "--test", str(ROOT / "tests/web/capture_app.test.mjs")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# pass 7" in run.stdout and "# fail 0" in run.stdout, run.stdout[-2000:]
