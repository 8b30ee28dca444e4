"""`extract` on the post-fusion screen: what each answer becomes (SDC observation- and definition-based
extraction), and the refusals, each an InvalidRequest the web edge answers with a 400 OperationOutcome that
names the linkId and the path."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from cds_service.errors import InvalidRequest
from cds_service.forms.extract import extract
from cds_service.protocol.outcome import operation_outcome
from cds_service.web.errors import status_of

from support.hooks import ROOT, T0

QUESTIONNAIRE = orjson.loads((ROOT / "plandefinitions/questionnaires/post-fusion-screen.json").read_bytes())
LOCAL = "http://postfusion-cds.org/fhir/CodeSystem/local"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def response(*items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": "screen-1",
        "questionnaire": QUESTIONNAIRE["url"],
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "authored": "2026-10-30T10:00:00Z",
        "author": {"reference": "Practitioner/dr-1"},
        "item": list(items),
    }
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def group(link_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "item": list(items)}


def answered(link_id: str, **value: Any) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [value]}


def course(*items: dict[str, Any]) -> dict[str, Any]:
    return group("outside-care", *items)


PT = answered("outside-care-therapy", valueCoding={"system": "http://snomed.info/sct", "code": "91251008"})


def resources(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry["resource"] for entry in extract(QUESTIONNAIRE, body, T0).get("entry", [])]


def refused(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRequest) as raised:
        extract(QUESTIONNAIRE, body, T0)
    assert status_of(raised.value) == 400
    outcome = operation_outcome(raised.value.issues)
    assert outcome["resourceType"] == "OperationOutcome"
    return [(issue["diagnostics"], issue["expression"][0]) for issue in outcome["issue"]]


def test_a_finding_becomes_an_observation_as_sdc_says():
    (found,) = resources(
        response(group("pain-source", answered("imaging-symptom-correlation", valueBoolean=True)))
    )
    assert found == {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "imaging", "display": "Imaging"}]}],
        "code": {
            "coding": [
                {
                    "system": LOCAL,
                    "code": "imaging-symptom-correlation",
                    "display": "Imaging-symptom correlation (clinician attestation)",
                }
            ]
        },
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "effectiveDateTime": "2026-10-30T10:00:00Z",
        "issued": "2026-10-30T10:00:00Z",
        "performer": [{"reference": "Practitioner/dr-1"}],
        "valueBoolean": True,
        "derivedFrom": [{"reference": "QuestionnaireResponse/screen-1"}],
    }


def test_the_questionnaire_wide_category_applies_where_no_item_names_one():
    (found,) = resources(response(group("red-flags", answered("rf-wound-drainage", valueBoolean=True))))
    assert found["category"][0]["coding"][0]["code"] == "survey"


def test_a_quantity_takes_the_items_unit_and_a_choice_becomes_a_codeable_concept():
    lucency, clearance = resources(
        response(
            group("pain-source", answered("peri-screw-lucency", valueQuantity={"value": 1.5})),
            group(
                "stimulator",
                answered(
                    "neuromodulation-psych-clearance",
                    valueCoding={"system": LOCAL, "code": "cleared", "display": "Cleared"},
                ),
            ),
        )
    )
    assert lucency["valueQuantity"] == {
        "value": 1.5,
        "unit": "mm",
        "system": "http://unitsofmeasure.org",
        "code": "mm",
    }
    assert clearance["valueCodeableConcept"] == {
        "coding": [{"system": LOCAL, "code": "cleared", "display": "Cleared"}],
        "text": "Cleared",
    }


def test_an_outside_course_becomes_one_completed_tagged_procedure_the_user_recorded():
    (procedure,) = resources(
        response(
            course(
                PT,
                answered("outside-care-start", valueDate="2026-03-20"),
                answered("outside-care-end", valueDate="2026-05-15"),
                answered("outside-care-sessions", valueInteger=8),
            )
        )
    )
    assert procedure == {
        "resourceType": "Procedure",
        "status": "completed",
        "meta": {
            "tag": [
                {"system": LOCAL, "code": "outside-care", "display": "Care given outside this organisation"}
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91251008"}]},
        "performedPeriod": {"start": "2026-03-20", "end": "2026-05-15"},
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/procedure-schedule",
                "valueTiming": {"repeat": {"count": 8}},
            }
        ],
        "subject": {"reference": "Patient/p1"},
        "recorder": {"reference": "Practitioner/dr-1"},  # the outside therapist performed it
    }


def test_each_repetition_of_the_course_group_is_its_own_procedure():
    dates = [("2026-01-05", "2026-02-20"), ("2026-03-01", "2026-04-30")]
    found = resources(
        response(
            *(
                course(
                    PT, answered("outside-care-start", valueDate=s), answered("outside-care-end", valueDate=e)
                )
                for s, e in dates
            )
        )
    )
    assert [(p["performedPeriod"]["start"], p["performedPeriod"]["end"]) for p in found] == dates


def test_a_response_not_yet_stored_travels_with_what_it_yields():
    bundle = extract(
        QUESTIONNAIRE,
        response(group("red-flags", answered("rf-wound-drainage", valueBoolean=False)), id=None),
        T0,
    )
    stored, observation = bundle["entry"]
    assert stored["resource"]["resourceType"] == "QuestionnaireResponse"
    assert stored["request"] == {"method": "POST", "url": "QuestionnaireResponse"}
    assert observation["resource"]["derivedFrom"] == [{"reference": stored["fullUrl"]}]
    assert bundle["timestamp"] == T0.isoformat()


def test_nothing_answered_extracts_nothing():
    assert "entry" not in extract(QUESTIONNAIRE, response(), T0)


def test_a_response_to_another_questionnaire_is_refused():
    assert refused(response(questionnaire="http://example.org/Questionnaire/phq-9")) == [
        (
            "this response answers another questionnaire; expected "
            "http://postfusion-cds.org/fhir/Questionnaire/post-fusion-screen|2.0.0",
            "QuestionnaireResponse.questionnaire",
        )
    ]
    assert (
        refused(response(questionnaire=f"{QUESTIONNAIRE['url']}|1.0.0"))[0][1]
        == "QuestionnaireResponse.questionnaire"
    )


def test_every_problem_is_named_at_once():
    body = response(
        group(
            "red-flags",
            answered("rf-progressive-weakness", valueString="yes"),
            answered("rf-limp", valueBoolean=True),
        ),
        group("pain-source", answered("peri-screw-lucency", valueQuantity={"value": 0.2, "code": "cm"})),
        group(
            "stimulator",
            answered("neuromodulation-psych-clearance", valueCoding={"system": LOCAL, "code": "facet"}),
        ),
        subject=None,
        status="in-progress",
    )
    assert refused(body) == [
        (
            "only a completed (or amended) QuestionnaireResponse can be extracted",
            "QuestionnaireResponse.status",
        ),
        ("the response needs a subject (a reference to the patient)", "QuestionnaireResponse.subject"),
        (
            "the answer to 'rf-progressive-weakness' does not fit: a boolean item is answered with "
            "valueBoolean, not valueString",
            "QuestionnaireResponse.item[0].item[0].answer[0]",
        ),
        (
            "linkId 'rf-limp' is not an item of this questionnaire here",
            "QuestionnaireResponse.item[0].item[1].linkId",
        ),
        (
            "the answer to 'peri-screw-lucency' does not fit: the quantity must be in 'mm'",
            "QuestionnaireResponse.item[1].item[0].answer[0]",
        ),
        (
            "the answer to 'neuromodulation-psych-clearance' does not fit: the code is not one of the item's "
            "answer options",
            "QuestionnaireResponse.item[2].item[0].answer[0]",
        ),
    ]


def test_a_block_relief_needs_its_block_type():
    body = response(group("pain-source", answered("diagnostic-block-relief", valueQuantity={"value": 60})))
    assert refused(body) == [
        ("'block-type' is required", "QuestionnaireResponse.item[0].item[0].answer[0]"),
    ]


def test_an_outside_course_needs_its_therapy_and_dates_in_order():
    body = response(
        course(
            answered("outside-care-start", valueDate="2026-05-15"),
            answered("outside-care-end", valueDate="2026-03-20"),
        )
    )
    assert refused(body) == [
        ("'outside-care-therapy' is required", "QuestionnaireResponse.item[0]"),
        ("the answers to 'outside-care' end before they start", "QuestionnaireResponse.item[0]"),
    ]


def test_one_answer_to_a_question_that_does_not_repeat():
    item = {"linkId": "rf-wound-drainage", "answer": [{"valueBoolean": True}, {"valueBoolean": False}]}
    assert refused(response(group("red-flags", item))) == [
        ("'rf-wound-drainage' takes one answer", "QuestionnaireResponse.item[0].item[0].answer"),
    ]


def test_a_group_that_does_not_repeat_appears_once():
    flag = answered("rf-wound-drainage", valueBoolean=True)
    assert refused(response(group("red-flags", flag), group("red-flags", copy.deepcopy(flag)))) == [
        (
            "'red-flags' does not repeat, but the response has it more than once",
            "QuestionnaireResponse.item[1]",
        ),
    ]


def test_the_block_type_sits_below_the_relief_answer():
    relief = {
        "linkId": "diagnostic-block-relief",
        "answer": [{"valueQuantity": {"value": 60}}],
        "item": [{"linkId": "block-type", "answer": [{"valueCoding": {"system": LOCAL, "code": "facet"}}]}],
    }
    assert refused(response(group("pain-source", relief))) == [
        (
            "the items below 'diagnostic-block-relief' go below its answer (answer.item)",
            "QuestionnaireResponse.item[0].item[0].item",
        ),
        ("'block-type' is required", "QuestionnaireResponse.item[0].item[0].answer[0]"),
    ]
