"""A response the capture app identifies once per form extracts to an idempotent transaction: the response and
every resource it yields are conditional creates on identifiers that are the same each time the same response
is extracted (and differ between responses and between the places in a response). The user who authored the
response is the Observations' performer and the outside courses' recorder."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.forms.extract import extract
from cds_service.forms.idempotency import if_none_exist

from .test_extract import PT, QUESTIONNAIRE, answered, course, group, refused, response
from support.hooks import T0

URI = "urn:ietf:rfc:3986"
FORM = {"system": URI, "value": "urn:uuid:0b8f6d0e-9c1e-4f8e-a0b1-5d3c2e1f4a7b"}


def ended(date: str) -> dict[str, Any]:
    return answered("outside-care-end", valueDate=date)


def screen(**fields: Any) -> dict[str, Any]:
    """A new (not yet stored) response with two findings and two outside courses, identified by `FORM`."""
    body = response(
        group(
            "red-flags",
            answered("rf-wound-drainage", valueBoolean=False),
            answered("rf-neck-stiffness", valueBoolean=True),
        ),
        course(PT, answered("outside-care-start", valueDate="2026-01-05"), ended("2026-02-20")),
        course(PT, answered("outside-care-start", valueDate="2026-03-01"), ended("2026-04-30")),
        id=None,
        identifier=FORM,
    )
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    bundle = extract(QUESTIONNAIRE, body, T0)
    return list(bundle["entry"])


def identifiers(body: dict[str, Any]) -> list[str]:
    return [e["resource"]["identifier"][0]["value"] for e in entries(body)[1:]]


def test_the_response_and_each_resource_it_yields_are_created_once_per_identifier():
    bundle = extract(QUESTIONNAIRE, screen(), T0)
    get_fhir_model_class("Bundle").model_validate(bundle)
    stored, *extracted = bundle["entry"]
    assert stored["resource"]["identifier"] == FORM
    assert stored["request"] == {
        "method": "POST",
        "url": "QuestionnaireResponse",
        "ifNoneExist": f"identifier={URI}|{FORM['value']}",
    }
    assert [e["resource"]["resourceType"] for e in extracted] == [
        "Observation",
        "Observation",
        "Procedure",
        "Procedure",
    ]
    values = set()
    for entry in extracted:
        resource = entry["resource"]
        (identifier,) = resource["identifier"]
        assert identifier["system"] == URI and identifier["value"].startswith("urn:uuid:")
        assert entry["request"]["ifNoneExist"] == f"identifier={URI}|{identifier['value']}"
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        values.add(identifier["value"])
    assert len(values) == 4  # each finding and each repetition of the course has its own
    assert all(e["resource"]["derivedFrom"] == [{"reference": stored["fullUrl"]}] for e in extracted[:2])


def test_the_same_response_extracted_again_gives_the_same_identifiers():
    assert identifiers(screen()) == identifiers(screen())


def test_identifiers_follow_the_linkids_not_the_order_of_the_groups():
    body = screen()
    reordered = copy.deepcopy(body)
    reordered["item"] = [reordered["item"][1], reordered["item"][2], reordered["item"][0]]
    first, second = identifiers(body), identifiers(reordered)
    assert sorted(first) == sorted(second)
    assert first[:2] == second[2:]  # the findings, extracted last from the reordered response


def test_another_form_gives_other_identifiers():
    other = screen(identifier={"system": URI, "value": "urn:uuid:5e0c1d2a-3b4c-4d5e-8f60-718293a4b5c6"})
    assert not set(identifiers(screen())) & set(identifiers(other))


def test_a_stored_response_is_referenced_and_what_it_yields_is_still_conditional():
    extracted = entries(screen(id="screen-1"))
    assert [e["resource"]["resourceType"] for e in extracted] == [
        "Observation",
        "Observation",
        "Procedure",
        "Procedure",
    ]
    assert extracted[0]["resource"]["derivedFrom"] == [{"reference": "QuestionnaireResponse/screen-1"}]
    assert all("ifNoneExist" in e["request"] for e in extracted)
    assert [e["resource"]["identifier"][0]["value"] for e in extracted] == identifiers(screen())


def test_without_an_identifier_the_creates_are_plain():
    for entry in entries(screen(identifier=None)):
        assert "ifNoneExist" not in entry["request"]
        assert entry["resource"]["resourceType"] == "QuestionnaireResponse" or (
            "identifier" not in entry["resource"]
        )


@pytest.mark.parametrize(
    "identifier", [{"value": FORM["value"]}, {"system": URI}, {"system": URI, "value": ""}, "urn:uuid:1"]
)
def test_an_identifier_without_system_and_value_is_refused(identifier):
    assert refused(screen(identifier=identifier)) == [
        (
            "the identifier needs a system and a value (the transaction creates one response per identifier)",
            "QuestionnaireResponse.identifier",
        )
    ]


def test_the_user_performed_the_findings_and_recorded_the_outside_courses():
    _, drainage, stiffness, first, second = entries(screen())
    user = {"reference": "Practitioner/dr-1"}
    assert drainage["resource"]["performer"] == [user] and stiffness["resource"]["performer"] == [user]
    assert first["resource"]["recorder"] == user and second["resource"]["recorder"] == user
    assert "performer" not in first["resource"]  # the outside therapist did, and is not known here


@pytest.mark.parametrize("author", [None, {"reference": "Device/tablet-3"}])
def test_an_author_who_cannot_perform_or_record_is_left_out(author):
    for entry in entries(screen(author=author))[1:]:
        assert "performer" not in entry["resource"] and "recorder" not in entry["resource"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("urn:uuid:1", "identifier=urn:ietf:rfc:3986|urn:uuid:1"),
        ("a|b,c$d\\e", "identifier=urn:ietf:rfc:3986|a%5C%7Cb%5C%2Cc%5C%24d%5C%5Ce"),
        ("form 7&_id=x", "identifier=urn:ietf:rfc:3986|form%207%26_id%3Dx"),
    ],
)
def test_the_condition_matches_exactly_that_identifier(value, expected):
    assert if_none_exist({"system": URI, "value": value}) == expected
