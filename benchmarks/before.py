"""The "before" of the report's before/after tables, measured in the same run on the same machine: the
benchmark suite of an earlier commit (by default the one before the performance work of issue #18), run
from a temporary git worktree with this checkout's virtual environment, for the sections it shares with
today's (in-process calls, HTTP load, step costs), and today's JWT load against the old service."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import auth_load

ROOT = Path(__file__).resolve().parents[1]
BASE = "3673e85"  # main before issue #18 (lazy record, byte-level nesting check, fallback defaults)
SKIPPED = ("logic", "memory", "fallback", "peer")  # not compared, or compared within this run already


def run(commit: str = BASE, quick: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cds-before-") as folder:
        tree = Path(folder) / "tree"
        add = ["git", "worktree", "add", "--detach", str(tree), commit]
        subprocess.run(add, cwd=ROOT, check=True, capture_output=True)
        try:
            command = [sys.executable, "benchmarks/run.py", "--no-report", *(["--quick"] if quick else [])]
            for name in SKIPPED:
                command += ["--skip", name]
            subprocess.run(command, cwd=tree, check=True, timeout=1800)
            results: dict[str, Any] = json.loads((tree / "benchmarks" / "results.json").read_text())
            results["auth"] = auth_load.run_in(tree, quick)  # today's JWT load against the old service
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    return {
        "commit": commit,
        "inprocess": results.get("inprocess"),
        "http": results.get("http"),
        "costs": results.get("costs"),
        "auth": results.get("auth"),
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1] if len(sys.argv) > 1 else BASE), indent=2))
