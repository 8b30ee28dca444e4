"""The package's shape is enforced, not described: the import-linter contracts in pyproject.toml hold, and
they do catch an import that climbs from a lower layer into a higher one."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.hooks import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the `cds_service` found first on the path from `root`, with `root`'s contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_layer_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "climb", "message"),
    [
        ("logic/scope.py", "from cds_service.web import app", "cds_service.logic is not allowed to import"),
        (
            "record/entry.py",
            "from cds_service.hooks import call",
            "cds_service.record is not allowed to import",
        ),
        ("cli/rules.py", "from cds_service.web import routes", "cds_service.cli is not allowed to import"),
        ("ops/logs.py", "import cds_service.plans.loader", "cds_service.ops is not allowed to import"),
    ],
)
def test_an_import_up_a_layer_breaks_the_contract(
    tmp_path: Path, module: str, climb: str, message: str
) -> None:
    shutil.copytree(ROOT / "cds_service", tmp_path / "cds_service", symlinks=True)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "cds_service" / module
    target.write_text(target.read_text() + f"\n{climb}  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert message in result.stdout


def _fixed_sleeps(path: Path) -> list[str]:
    """`time.sleep(c)` / `asyncio.sleep(c)` / `anyio.sleep(c)` with a constant c > 0.05 s in a test file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "sleep" or not node.args:
            continue
        try:
            seconds = ast.literal_eval(node.args[0])
        except ValueError:
            continue  # a computed delay: a simulated slow server, not a wait
        if isinstance(seconds, int | float) and seconds > 0.05:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} sleeps {seconds} s")
    return found


def test_the_suite_polls_with_a_deadline_instead_of_sleeping() -> None:
    sleeps = [line for path in sorted((ROOT / "tests").rglob("*.py")) for line in _fixed_sleeps(path)]
    assert sleeps == []


def test_one_call_enters_at_the_web_edge_and_no_import_climbs() -> None:
    """scripts/request_path.py traces a real order-sign call through the folders it passes."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/request_path.py")],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("CDS_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    folders = next(line for line in lines if line.startswith("folders")).split(": ", 1)[1].split(" -> ")
    assert folders[0] == "web" and {"hooks", "record", "plans", "logic", "protocol"} <= set(folders)
    assert folders.index("hooks") < folders.index("record") < folders.index("plans")
    assert "imports up a layer: 0" in lines
    # the only calls up a layer are the operators plans/ registers in the JSON-Logic engine (callbacks)
    up = lines[lines.index(next(line for line in lines if line.startswith("calls up a layer"))) + 1 :]
    callbacks = [line.strip() for line in up if line.startswith("  ") and " -> " in line]
    assert callbacks and all(
        c.startswith("cds_service.logic.") and " -> cds_service.plans." in c for c in callbacks
    )
