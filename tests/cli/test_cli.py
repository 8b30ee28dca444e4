"""The command line: validate a plan-definition folder, evaluate one hook request in-process."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.hooks import HOOKS_DIR, ROOT, rule_ids


def cds(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cds_service", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_validate_accepts_the_bundled_plan_definitions():
    result = cds("validate")
    assert result.returncode == 0, result.stderr
    assert "7 plan definitions" in result.stdout


def test_validate_reports_a_typo_with_file_and_path(tmp_path: Path):
    folder = tmp_path / "plans"
    shutil.copytree(ROOT / "plandefinitions", folder)
    plan = folder / "40-hardware-removal.json"
    text = plan.read_text()
    assert text.count('{\\"fact\\": \\"hardwareFailure\\"}') == 1
    plan.write_text(text.replace('{\\"fact\\": \\"hardwareFailure\\"}', '{\\"fact\\": \\"hardwareFailur\\"}'))
    result = cds("validate", str(folder))
    assert result.returncode == 1
    location = "40-hardware-removal.json: extension[1].extension[3].valueExpression.expression"
    assert f"{location}: unknown fact 'hardwareFailur'" in result.stderr


def test_validate_rejects_invalid_fhir(tmp_path: Path):
    folder = tmp_path / "plans"
    shutil.copytree(ROOT / "plandefinitions", folder)
    (folder / "valuesets" / "Broken.json").write_text(
        json.dumps({"resourceType": "ValueSet", "status": "active", "compose": 7})
    )
    result = cds("validate", str(folder))
    assert result.returncode == 1
    assert "valuesets/Broken.json: compose: not valid FHIR R4" in result.stderr


@pytest.mark.parametrize(
    ("hook", "now", "expected"),
    [
        (
            "patient-view",
            "2026-11-01",
            [("PATH-CC-INCOMPLETE", "warning"), ("RISK-DEP", "info"), ("RISK-SMOKE", "info")],
        ),
        # 49 days after this patient's fusion: inside the healing window, where revision 2 says nothing of
        # the pathway (PATH-EARLY is off by default, V2-22) but still of the risk factors
        ("patient-view", "2025-11-15", [("RISK-DEP", "info"), ("RISK-SMOKE", "info")]),
        ("order-select", "2026-11-01", [("HW-MET", "info")]),
        ("order-sign", "2026-11-01", [("REV-NOT-MET", "warning")]),
    ],
)
def test_evaluate_prints_the_cds_response(hook, now, expected):
    result = cds("evaluate", str(HOOKS_DIR / f"{hook}.json"), "--now", now)
    assert result.returncode == 0, result.stderr
    assert rule_ids(json.loads(result.stdout)) == expected


def test_evaluate_prints_an_operation_outcome_for_a_bad_request(tmp_path: Path):
    request = json.loads((HOOKS_DIR / "patient-view.json").read_text())
    del request["context"]["patientId"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(request))
    result = cds("evaluate", str(path))
    assert result.returncode == 2
    assert json.loads(result.stdout)["issue"][0]["expression"] == ["context.patientId"]


def test_evaluate_names_a_hook_it_has_no_service_for(tmp_path: Path):
    request = json.loads((HOOKS_DIR / "patient-view.json").read_text())
    request["hook"] = "encounter-start"
    path = tmp_path / "other-hook.json"
    path.write_text(json.dumps(request))
    result = cds("evaluate", str(path))
    assert result.returncode == 2
    (issue,) = json.loads(result.stdout)["issue"]
    assert issue["expression"] == ["hook"]
    assert issue["diagnostics"].startswith("no service for hook 'encounter-start'")
    assert "error: no service for hook 'encounter-start'" in result.stderr
