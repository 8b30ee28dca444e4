"""The post-fusion screen end to end (V2-32, V2-33): a clinician's answers, extracted as SDC `$extract` does,
added to a synthetic patient's record, and a real hook call through the app. The cards that depend on the
answers change as RULES.md says; the fixture's own expectation is checked first, so each change is shown."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from starlette.testclient import TestClient

from cds_service.cli.cases import describe

from support.hooks import ROOT, SERVICES
from support.requests import discovery_templates, hook_request

QUESTIONNAIRE = orjson.loads((ROOT / "plandefinitions/questionnaires/post-fusion-screen.json").read_bytes())
CASES = {path.stem: orjson.loads(path.read_bytes()) for path in (ROOT / "fixtures/patients").glob("*.json")}
LOCAL = "http://postfusion-cds.org/fhir/CodeSystem/local"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


def yes(link_id: str) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [{"valueBoolean": True}]}


def no(link_id: str) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [{"valueBoolean": False}]}


def quantity(link_id: str, value: float, unit: str, *children: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}
    if children:
        answer["item"] = list(children)  # a question's child items sit below its answer (R4 qrs-1)
    return {"linkId": link_id, "answer": [answer]}


def local_choice(link_id: str, code: str) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [{"valueCoding": {"system": LOCAL, "code": code}}]}


def group(link_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "item": list(items)}


def outside_course(therapy: str, start: str, end: str, sessions: int) -> dict[str, Any]:
    code = {"PT": "91251008", "CBT": "304891004"}[therapy]
    return group(
        "outside-care",
        {"linkId": "outside-care-therapy", "answer": [{"valueCoding": {"system": SNOMED, "code": code}}]},
        {"linkId": "outside-care-start", "answer": [{"valueDate": start}]},
        {"linkId": "outside-care-end", "answer": [{"valueDate": end}]},
        {"linkId": "outside-care-sessions", "answer": [{"valueInteger": sessions}]},
    )


RED_FLAGS_DENIED = [
    no(link)
    for link in (
        "rf-bladder-bowel-dysfunction",
        "rf-progressive-weakness",
        "rf-wound-drainage",
        "rf-implant-crack-sharp-pain",
        "rf-unremitting-night-pain",
        "rf-neck-stiffness",
        "rf-hardware-grinding-or-bulge",
    )
]


def red_flags(*present: str) -> dict[str, Any]:
    return group(
        "red-flags",
        *(yes(item["linkId"]) if item["linkId"] in present else item for item in RED_FLAGS_DENIED),
    )


@dataclass(frozen=True)
class Scenario:
    case: str
    call: str
    items: tuple[dict[str, Any], ...]
    before: list[str]
    after: list[str]
    why: str


SCENARIOS = [
    Scenario(
        "p04-cc-complete-asd",
        "select-revision",
        (group("pain-source", yes("imaging-symptom-correlation")),),
        ["REV-NOT-MET[R4]"],
        ["REV-MET"],
        "R4: the clinician attests that imaging matches the symptoms",
    ),
    Scenario(
        "p83-v2-15-si-block-revision",
        "sign-revision",
        (
            group(
                "pain-source",
                quantity("diagnostic-block-relief", 80, "%", local_choice("block-type", "facet")),
            ),
        ),
        ["REV-NOT-MET[R4]"],
        ["REV-MET"],
        "R4 and V2-15: a facet block with 80 % relief localises the pain (the earlier SI block never does)",
    ),
    Scenario(
        "p85-v2-17-odi-22-not-met",
        "sign-revision",
        (group("function-and-wishes", yes("unable-to-work-due-to-back-pain")),),
        ["REV-NOT-MET[R3]"],
        ["REV-MET"],
        "R3: unable to work because of back pain is a significant functional impairment",
    ),
    Scenario(
        "p30-scs-met",
        "chart-open",
        (red_flags("rf-progressive-weakness"),),
        ["PATH-CC-COMPLETE"],
        ["RF-2"],
        "RF-2: progressive weakness on the screen; a red flag suppresses the pathway card",
    ),
    Scenario(
        "p24-entered-in-error-refuted",
        "chart-open",
        (
            red_flags(
                "rf-implant-crack-sharp-pain", "rf-unremitting-night-pain", "rf-hardware-grinding-or-bulge"
            ),
        ),
        ["PATH-CC-COMPLETE"],
        ["RF-4", "RF-5", "RF-7"],
        "RF-4, RF-5 and RF-7 come only from the screen",
    ),
    Scenario(
        "p30-scs-met",
        "sign-scs",
        (group("stimulator", local_choice("neuromodulation-psych-clearance", "not-cleared")),),
        ["SCS-MET"],
        ["SCS-NOT-MET[X3]"],
        "X3: a psychological evaluation that did not clear the patient",
    ),
    Scenario(
        "p88-v2-21-scs-permanent-not-met",
        "sign-paddle",
        (group("stimulator", quantity("scs-trial-relief", 60, "%")),),
        ["SCS-PERM-NOT-MET[P1,P2]"],
        ["SCS-PERM-NOT-MET[P1]"],
        "P2 (V2-21): 60 % relief during the trial, recorded now",
    ),
    Scenario(
        "p28-hw-not-supported",
        "select-removal",
        (
            group(
                "pain-source",
                quantity("hardware-block-relief", 80, "%"),
                quantity("peri-screw-lucency", 1.5, "mm"),
            ),
        ),
        ["HW-NOT-SUPPORTED"],
        ["HW-MET"],
        "H1 and H2: lucency over 1 mm and a hardware block over 70 %",
    ),
    Scenario(
        "p62-v2-13-no-counted-pt",
        "chart-open",
        (outside_course("PT", "2026-03-20", "2026-05-15", 8),),
        ["PATH-CC-INCOMPLETE[C1,C2,C7]"],
        ["PATH-CC-COMPLETE"],
        "C1 (V2-33): an outside PT course of 56 days, whose start opens the CBT window (C2) and clock (C7)",
    ),
    Scenario(
        "p35-cbt-outside-pt-window",
        "chart-open",
        (outside_course("CBT", "2026-02-01", "2026-03-15", 6),),
        ["PATH-CC-INCOMPLETE[C2,C6p]"],
        ["PATH-CC-COMPLETE"],
        "C2 and C6p (V2-33): outside CBT alongside the PT programme",
    ),
    Scenario(
        "p34-pt-too-short-nsaid-cancelled",
        "chart-open",
        (
            group("function-and-wishes", yes("nsaid-contraindicated")),
            outside_course("PT", "2026-05-20", "2026-07-10", 7),
        ),
        ["PATH-CC-INCOMPLETE[C1,C2,C4]"],
        ["PATH-CC-INCOMPLETE[C2]"],
        "C4 waived by the recorded contraindication (V2-14); C1 met by the outside course",
    ),
]


def response(case_id: str, items: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"{case_id}-screen",
        "questionnaire": f"{QUESTIONNAIRE['url']}|{QUESTIONNAIRE['version']}",
        "status": "completed",
        "subject": {"reference": f"Patient/{case_id}"},
        "encounter": {"reference": f"Encounter/{case_id}-visit"},
        "authored": "2026-10-30T10:00:00Z",
        "author": {"reference": "Practitioner/synthetic-clinician"},
        "item": copy.deepcopy(list(items)),
    }


def cards(client: TestClient, case: dict[str, Any], name: str) -> list[str]:
    call = next(call for call in case["calls"] if call["name"] == name)
    body = hook_request(case, call, discovery_templates(client)[call["hook"]])
    answer = client.post(f"/cds-services/{SERVICES[call['hook']]}", json=body)
    assert answer.status_code == 200, answer.text
    return describe(answer.json()["cards"])


def extracted(client: TestClient, answers: dict[str, Any]) -> dict[str, Any]:
    """SDC `$extract` on the FHIR facade, as the capture app calls it."""
    reply = client.post("/fhir/QuestionnaireResponse/$extract", json=answers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/fhir+json")
    bundle: dict[str, Any] = reply.json()
    return bundle


def test_a_response_that_does_not_fit_is_refused_with_its_link_id(client: TestClient):
    answers = response("p30-scs-met", (red_flags(),))
    answers["item"][0]["item"][0]["answer"] = [{"valueString": "maybe"}]
    reply = client.post("/fhir/QuestionnaireResponse/$extract", json=answers)
    assert reply.status_code == 400
    issue = reply.json()["issue"][0]
    assert answers["item"][0]["item"][0]["linkId"] in issue["diagnostics"] + str(issue.get("expression"))
    unknown = {**answers, "questionnaire": "http://example.org/Questionnaire/other"}
    assert client.post("/fhir/QuestionnaireResponse/$extract", json=unknown).status_code == 400


def stored(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The transaction's resources as a FHIR server keeps them: each with the id it assigns."""
    kept = []
    for entry in bundle["entry"]:
        assert entry["request"]["method"] == "POST"
        resource = {**entry["resource"], "id": entry["fullUrl"].removeprefix("urn:uuid:")}
        kept.append({"fullUrl": entry["fullUrl"], "resource": resource})
    return kept


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{s.case}/{s.call}" for s in SCENARIOS])
def test_the_answers_reach_the_cards_that_depend_on_them(client: TestClient, scenario: Scenario):
    case = copy.deepcopy(CASES[scenario.case])
    assert cards(client, case, scenario.call) == scenario.before

    bundle = extracted(client, response(case["id"], scenario.items))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    case["bundle"]["entry"].extend(stored(bundle))

    assert cards(client, case, scenario.call) == scenario.after, scenario.why


def test_the_red_flag_screen_denied_changes_nothing(client: TestClient):
    """Seven 'no' answers are recorded (documented absence) and raise no card."""
    case = copy.deepcopy(CASES["p30-scs-met"])
    bundle = extracted(client, response(case["id"], (red_flags(),)))
    assert len(bundle["entry"]) == 7
    assert {entry["resource"]["valueBoolean"] for entry in bundle["entry"]} == {False}
    case["bundle"]["entry"].extend(stored(bundle))
    assert cards(client, case, "chart-open") == ["PATH-CC-COMPLETE"]
