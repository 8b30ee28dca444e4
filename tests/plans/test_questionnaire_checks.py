"""The loader's checks of the post-fusion screen (V2-32): every answer it extracts reaches a rule with the
value type and unit the CodeSystem publishes, and every local finding the rules read is asked. `validate`
refuses each defect with the file, the literal JSON path and the reason."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cds_service.plans.errors import RuleSetError
from cds_service.plans.loader import load_ruleset

from support.hooks import ROOT

RULES = ROOT / "plandefinitions"
SCREEN = "questionnaires/post-fusion-screen.json"
LOCAL = "http://postfusion-cds.org/fhir/CodeSystem/local"
# Where the items the tests change sit in the screen (checked by test_the_bundled_screen_loads).
RED_FLAGS, PAIN_SOURCE, STIMULATOR, OUTSIDE_CARE = 0, 1, 3, 4
WEAKNESS, BLOCK, LUCENCY, TRIAL_RELIEF, THERAPY = 1, 1, 3, 1, 0


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    folder = tmp_path / "plandefinitions"
    shutil.copytree(RULES, folder)
    return folder


def edit(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / SCREEN
    resource = json.loads(path.read_text())
    change(resource)
    path.write_text(json.dumps(resource, indent=2))


def problems(folder: Path) -> list[str]:
    with pytest.raises(RuleSetError) as raised:
        load_ruleset(folder)
    return [str(problem) for problem in raised.value.problems]


def item(screen: dict[str, Any], group: int, index: int) -> dict[str, Any]:
    found: dict[str, Any] = screen["item"][group]["item"][index]
    return found


def test_the_bundled_screen_loads():
    screen = load_ruleset(RULES).artifacts["Questionnaire"]["post-fusion-screen"]
    assert screen["url"] == "http://postfusion-cds.org/fhir/Questionnaire/post-fusion-screen"
    assert screen["version"] == "2.0.0" and screen["status"] == "active"
    assert "V2-32" in screen["description"] and "V2-33" in screen["description"]
    links = [
        item(screen, RED_FLAGS, WEAKNESS)["linkId"],
        item(screen, PAIN_SOURCE, BLOCK)["linkId"],
        item(screen, PAIN_SOURCE, LUCENCY)["linkId"],
        item(screen, STIMULATOR, TRIAL_RELIEF)["linkId"],
        screen["item"][OUTSIDE_CARE]["linkId"],
        item(screen, OUTSIDE_CARE, THERAPY)["linkId"],
    ]
    assert links == [
        "rf-progressive-weakness",
        "diagnostic-block-relief",
        "peri-screw-lucency",
        "scs-trial-relief",
        "outside-care",
        "outside-care-therapy",
    ]


def test_no_item_text_shows_an_internal_id():
    """Clinicians read plain words: no local codes, criterion or rule ids in the questions."""
    screen = json.loads((RULES / SCREEN).read_text())
    codes = {
        concept["code"] for concept in json.loads((RULES / "codesystems/local.json").read_text())["concept"]
    }

    def texts(items: list[dict[str, Any]]) -> list[str]:
        return [t for i in items for t in [i["text"], *texts(i.get("item", []))]]

    for text in texts(screen["item"]):
        words = set(text.lower().replace("?", " ").replace("(", " ").replace(")", " ").split())
        assert not words & codes, text
        assert not any(word.upper().startswith(("RF-", "R4", "H2", "C1", "V2-")) for word in words), text


def set_code(group: int, index: int, code: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    return lambda screen: item(screen, group, index).update(code=[code])


def remove(group: int, link_id: str) -> Callable[[dict[str, Any]], None]:
    def change(screen: dict[str, Any]) -> None:
        items = screen["item"][group]["item"]
        items[:] = [i for i in items if i["linkId"] != link_id]

    return change


def unit(group: int, index: int, code: str) -> Callable[[dict[str, Any]], None]:
    def change(screen: dict[str, Any]) -> None:
        for extension in item(screen, group, index)["extension"]:
            if extension["url"].endswith("questionnaire-unitOption"):
                extension["valueCoding"]["code"] = code

    return change


def block_type(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda screen: change(item(screen, PAIN_SOURCE, BLOCK)["item"][0])


def definition(value: str) -> Callable[[dict[str, Any]], None]:
    return lambda screen: item(screen, OUTSIDE_CARE, THERAPY).update(definition=value)


def therapy_code(code: str) -> Callable[[dict[str, Any]], None]:
    def change(screen: dict[str, Any]) -> None:
        item(screen, OUTSIDE_CARE, THERAPY)["answerOption"][0]["valueCoding"]["code"] = code

    return change


W = f"{SCREEN}: item[{RED_FLAGS}].item[{WEAKNESS}]"
B = f"{SCREEN}: item[{PAIN_SOURCE}].item[{BLOCK}]"
L = f"{SCREEN}: item[{PAIN_SOURCE}].item[{LUCENCY}]"
T = f"{SCREEN}: item[{OUTSIDE_CARE}].item[{THERAPY}]"
REFUSALS = {
    "a code no rule reads": (
        set_code(RED_FLAGS, WEAKNESS, {"system": "http://loinc.org", "code": "29463-7"}),
        f"{W}.code[0]: no value set the rules read as an Observation contains http://loinc.org|29463-7",
    ),
    "a local code the CodeSystem lacks": (
        set_code(RED_FLAGS, WEAKNESS, {"system": LOCAL, "code": "rf-weakness"}),
        f"{W}.code[0]: local code 'rf-weakness' is not in the CodeSystem {LOCAL}",
    ),
    "a boolean finding asked as a number": (
        lambda screen: item(screen, RED_FLAGS, WEAKNESS).update(type="integer"),
        f"{W}.type: 'rf-progressive-weakness' is a boolean in the CodeSystem: the item type must be boolean",
    ),
    "a percentage asked as yes or no": (
        lambda screen: item(screen, PAIN_SOURCE, BLOCK).update(type="boolean"),
        f"{B}.type: 'diagnostic-block-relief' is a Quantity in the CodeSystem: the item type must be decimal "
        "or quantity",
    ),
    "lucency in centimetres": (
        unit(PAIN_SOURCE, LUCENCY, "cm"),
        f"{L}.extension: 'peri-screw-lucency' is read in 'mm': the item needs questionnaire-unitOption mm",
    ),
    "a block type answered with another concept's answer": (
        block_type(lambda child: child["answerOption"][0]["valueCoding"].update(code="cleared")),
        f"{B}.item[0].answerOption[0].valueCoding: answer 'cleared' is not an answer to 'block-type' in the "
        "CodeSystem",
    ),
    "a component code the rules do not read as a component": (
        block_type(lambda child: child.update(code=[{"system": LOCAL, "code": "facet"}])),
        f"{B}.item[0].code[0]: no value set the rules read as an Observation component contains "
        f"{LOCAL}|facet",
    ),
    "an extracted item without a code": (
        lambda screen: item(screen, RED_FLAGS, WEAKNESS).pop("code"),
        f"{W}: an item extracted as an Observation needs a code (item.code)",
    ),
    "a screen that leaves out a finding the rules read": (
        remove(STIMULATOR, "scs-trial-relief"),
        f"{SCREEN}: item: the rules read local code 'scs-trial-relief' (value set ScsTrialRelief) as an "
        "Observation, but no Questionnaire item asks it",
    ),
    "an outside-care therapy no rule counts": (
        therapy_code("12345"),
        f"{T}.answerOption[0].valueCoding: no value set the rules read as a Procedure contains "
        "http://snomed.info/sct|12345",
    ),
    "a definition outside the resource the group builds": (
        definition("http://hl7.org/fhir/StructureDefinition/Observation#Observation.code.coding"),
        f"{T}.definition: a definition inside a Procedure group names an element of "
        "http://hl7.org/fhir/StructureDefinition/Procedure (or of an extension's definition), as "
        "http://hl7.org/fhir/StructureDefinition/Procedure#Procedure.code.coding",
    ),
    "no version": (
        lambda screen: screen.pop("version"),
        f"{SCREEN}: version: a Questionnaire needs 'version': the business version of the rules, cited with "
        "every card they produce",
    ),
    "no review date": (
        lambda screen: screen.pop("lastReviewDate"),
        f"{SCREEN}: lastReviewDate: a Questionnaire needs 'approvalDate' or 'lastReviewDate'",
    ),
    "a url outside the project's base": (
        lambda screen: screen.update(url="http://example.org/Questionnaire/screen"),
        f"{SCREEN}: url: a Questionnaire's url starts with http://postfusion-cds.org/fhir/Questionnaire/, "
        "where integrators resolve it",
    ),
}


@pytest.mark.parametrize(("change", "expected"), REFUSALS.values(), ids=REFUSALS.keys())
def test_a_defect_is_refused_with_file_path_and_reason(
    plans: Path, change: Callable[[dict[str, Any]], None], expected: str
):
    edit(plans, change)
    assert expected in problems(plans)


def test_a_second_item_asking_the_same_finding_is_no_defect(plans: Path):
    """Completeness is over every Questionnaire: a site's own screen may ask a finding again."""
    copy = json.loads((plans / SCREEN).read_text())
    copy.update(id="site-screen", url="http://postfusion-cds.org/fhir/Questionnaire/site-screen")
    (plans / "questionnaires" / "site-screen.json").write_text(json.dumps(copy))
    edit(plans, remove(STIMULATOR, "scs-trial-relief"))
    assert "Questionnaire" in load_ruleset(plans).artifacts


def test_a_folder_without_a_screen_still_loads(plans: Path):
    """Rules can be authored and tested without a screen; the completeness check needs one to compare."""
    shutil.rmtree(plans / "questionnaires")
    assert "Questionnaire" not in load_ruleset(plans).artifacts


def test_validate_lists_the_defect_and_exits_1(plans: Path):
    edit(plans, remove(RED_FLAGS, "rf-progressive-weakness"))
    result = subprocess.run(
        [sys.executable, "-m", "cds_service", "validate", str(plans)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        f"error: {SCREEN}: item: the rules read local code 'rf-progressive-weakness' (value set "
        "RfProgressiveWeakness) as an Observation, but no Questionnaire item asks it"
    ) in result.stderr
