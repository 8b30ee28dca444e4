"""Knowledge-artifact metadata: every PlanDefinition and Library says which version it is, when it was
written, whether it is in force and when it was last reviewed, who wrote and reviewed it, and which sources
it draws on; each recommendation carries its CPG-on-FHIR grades. `validate` refuses the missing ones with
the file and the literal JSON path."""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cds_service.plans.errors import RuleSetError
from cds_service.plans.loader import load_ruleset
from cds_service.plans.metadata import GRADES, QUALITY, STRENGTH

from support.hooks import ROOT

RULES = ROOT / "plandefinitions"
HW = "40-hardware-removal.json"
SURGERY = "libraries/surgery.json"
SEED_TITLES = (  # the five seeds of ../shared/seeds/, by the titles they carry
    "What are the treatment options for back pain after spinal fusion?",
    "Chronic Pain After Spinal Fusion Surgery Treatment",
    "Guide to Back Pain Persists After Spinal Fusion",
    "Why Is My Pain Worse After Spinal Fusion? Understanding Failed Back Surgery Syndrome",
    "Failed Spinal Fusion Surgeries \u2013 Is There a Solution?",  # the title's en dash
)
SPECIFICATION = "Clinical rules: persistent or recurrent pain after lumbar fusion"
# Cards that make no recommendation of their own: a data-completeness notice, prognostic figures, and the
# red-flag notices whose recommendation (and grade) is the red-flag card's.
NOT_RECOMMENDATIONS = {"PATH-NODATE"}


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    folder = tmp_path / "plandefinitions"
    shutil.copytree(RULES, folder)
    return folder


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    resource = json.loads(path.read_text())
    change(resource)
    path.write_text(json.dumps(resource, indent=2))


def problems(folder: Path) -> list[str]:
    with pytest.raises(RuleSetError) as raised:
        load_ruleset(folder)
    return [str(problem) for problem in raised.value.problems]


def artifacts() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(RULES.rglob("*.json")):
        resource = json.loads(path.read_text())
        if resource.get("resourceType") in {"PlanDefinition", "Library"}:
            found.append((str(path.relative_to(RULES)), resource))
    return found


def test_every_bundled_artifact_carries_its_metadata():
    cited: set[str] = set()
    for file, resource in artifacts():
        for element in ("version", "date", "status"):
            assert resource.get(element), f"{file} has no {element}"
        assert resource.get("approvalDate") or resource.get("lastReviewDate"), file
        for role in ("author", "reviewer"):
            assert all(contact.get("name") for contact in resource[role]), f"{file}: {role}"
        citations = resource["relatedArtifact"]
        assert all(a["type"] == "citation" and a["display"] and a["citation"] for a in citations), file
        # No `url`: the loader takes the first relatedArtifact url as the cards' source link.
        assert all("url" not in artifact for artifact in citations), file
        assert any(SPECIFICATION in artifact["display"] for artifact in citations), file
        cited.update(title for title in SEED_TITLES for a in citations if title in a["citation"])
    assert cited == set(SEED_TITLES)


def test_every_recommendation_carries_valid_grades():
    for file, resource in artifacts():
        for action in resource.get("action") or ():
            rule = action["code"][0]["coding"][0]["code"]
            grades = {e["url"]: e for e in action.get("extension") or () if e["url"] in GRADES}
            if rule in NOT_RECOMMENDATIONS:
                assert not grades, f"{file}: {action['id']} makes no recommendation, so it has no grade"
                continue
            assert set(grades) == {STRENGTH, QUALITY}, (
                f"{file}: {action['id']} needs both grades (or, if it recommends nothing, a place in "
                "NOT_RECOMMENDATIONS with the reason)"
            )
            for url, extension in grades.items():
                system, codes = GRADES[url]
                concept = extension["valueCodeableConcept"]
                assert concept["coding"][0]["system"] == system
                assert concept["coding"][0]["code"] in codes
                assert concept["text"], f"{file}: {action['id']}: say where the grade comes from"


def test_the_grades_follow_what_the_sources_say():
    """Spot checks of the documented choices (docs/rules.md, Metadata): S000's Level II evidence for
    rehabilitation with CBT, its 'no Level I evidence' for revision, and ungraded clinic pages."""

    def grades(file: str, action_id: str) -> tuple[str, str]:
        resource = json.loads((RULES / file).read_text())
        action = next(a for a in resource["action"] if a["id"] == action_id)
        by_url = {
            e["url"]: e["valueCodeableConcept"]["coding"][0]["code"]
            for e in action["extension"]
            if e["url"] in GRADES
        }
        return by_url[STRENGTH], by_url[QUALITY]

    assert grades("20-conservative-care.json", "PATH-CC-INCOMPLETE") == ("strong", "moderate")
    assert grades("30-revision.json", "REV-NOT-MET") == ("strong", "low")
    assert grades("30-revision.json", "REV-MET") == ("weak", "low")
    assert grades(HW, "HW-NOT-SUPPORTED") == ("strong", "very-low")
    assert grades("50-neuromodulation.json", "SCS-MET") == ("weak", "very-low")
    assert grades("10-red-flags.json", "RF-1") == ("strong", "very-low")


MISSING = {
    "version": (HW, lambda r: r.pop("version"), f"{HW}: version: a PlanDefinition needs 'version'"),
    "date": (HW, lambda r: r.pop("date"), f"{HW}: date: a PlanDefinition needs 'date'"),
    "status": (HW, lambda r: r.pop("status"), f"{HW}: status: a PlanDefinition needs 'status'"),
    "review date": (
        HW,
        lambda r: r.pop("lastReviewDate"),
        f"{HW}: lastReviewDate: a PlanDefinition needs 'approvalDate' or 'lastReviewDate'",
    ),
    "library version": (
        SURGERY,
        lambda r: r.pop("version"),
        f"{SURGERY}: version: a Library needs 'version'",
    ),
    "library date": (SURGERY, lambda r: r.update(date=""), f"{SURGERY}: date: a Library needs 'date'"),
    "library status": (SURGERY, lambda r: r.pop("status"), f"{SURGERY}: status: a Library needs 'status'"),
    "library review date": (
        SURGERY,
        lambda r: r.pop("lastReviewDate"),
        f"{SURGERY}: lastReviewDate: a Library needs 'approvalDate' or 'lastReviewDate'",
    ),
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_missing_metadata_is_refused_with_file_and_path(plans: Path, case: str):
    file, change, expected = MISSING[case]
    edit(plans / file, change)
    found = problems(plans)
    assert any(problem.startswith(expected) for problem in found), found


def test_all_missing_metadata_of_a_file_is_reported_at_once(plans: Path):
    def strip(resource: dict[str, Any]) -> None:
        for element in ("version", "date", "lastReviewDate"):
            resource.pop(element)

    edit(plans / HW, strip)
    found = [p for p in problems(plans) if p.startswith(f"{HW}: ")]
    assert [p.split(":")[1].strip() for p in found] == ["version", "date", "lastReviewDate"]


def test_an_approval_date_is_enough_without_a_review_date(plans: Path):
    edit(plans / HW, lambda r: (r.pop("lastReviewDate"), r.update(approvalDate="2026-12-01")))
    assert load_ruleset(plans).plans


def test_an_invalid_date_is_refused_as_invalid_fhir(plans: Path):
    edit(plans / HW, lambda r: r.update(date="last tuesday"))
    assert any(p.startswith(f"{HW}: date: not valid FHIR R4") for p in problems(plans))


def graded_action(resource: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in resource["action"] if a["id"] == "HW-MET")


def test_a_misspelt_grade_is_refused_with_its_path(plans: Path):
    resource = json.loads((plans / HW).read_text())
    index = resource["action"].index(graded_action(resource))

    def misspell(resource: dict[str, Any]) -> None:
        graded_action(resource)["extension"][1]["valueCodeableConcept"]["coding"][0]["code"] = "moderat"

    edit(plans / HW, misspell)
    expected = (
        f"{HW}: action[{index}].extension[1]: qualityOfEvidence needs valueCodeableConcept.coding[0] "
        "with system http://terminology.hl7.org/CodeSystem/evidence-quality"
    )
    assert any(problem.startswith(expected) for problem in problems(plans))


def test_a_grade_under_a_url_cpg_does_not_define_is_refused(plans: Path):
    resource = json.loads((plans / HW).read_text())
    index = resource["action"].index(graded_action(resource))
    lookalike = "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-strengthOfRecommendation"
    edit(plans / HW, lambda r: graded_action(r)["extension"][0].update(url=lookalike))
    expected = (
        f"{HW}: action[{index}].extension[0].url: '{lookalike}' is not a CPG extension; "
        f"the grade is '{STRENGTH}'"
    )
    assert expected in problems(plans)


def test_validate_lists_missing_metadata_and_exits_1(plans: Path):
    edit(plans / SURGERY, lambda r: r.pop("version"))
    result = subprocess.run(
        [sys.executable, "-m", "cds_service", "validate", str(plans)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"error: {SURGERY}: version: a Library needs 'version'" in result.stderr


def _codings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            yield node
        for value in node.values():
            yield from _codings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _codings(value)


def test_every_local_code_the_synthetic_patients_send_is_published_in_the_code_system():
    """The CodeSystem is the integrator's list of what to send (V2-32): the fixtures send nothing else."""
    system = json.loads((RULES / "codesystems" / "local.json").read_text())
    published = {concept["code"] for concept in system["concept"]}
    sent = {
        coding["code"]
        for path in (ROOT / "fixtures" / "patients").glob("*.json")
        for coding in _codings(json.loads(path.read_text()))
        if coding["system"] == system["url"]
    }
    assert sent and sent <= published, sent - published
    for concept in system["concept"]:
        properties = {p["code"]: p for p in concept.get("property", [])}
        assert concept["definition"], concept["code"]
        if properties.get("value-type", {}).get("valueCode") == "Quantity":
            assert properties.get("unit"), f"{concept['code']} is a quantity without a unit"
