"""The transaction `$extract` answers is what the capture app posts to the EHR: on a real HAPI FHIR it writes
the response and its Observations and Procedures once, and posting it again (or a second extraction of the
same response) creates nothing. A resource new in a later submit of the same form is linked, by HAPI, to
the response stored the first time (its `derivedFrom` urn:uuid resolves to the conditional create's match)."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import orjson
import pytest

from support.hooks import ROOT

QUESTIONNAIRE = orjson.loads((ROOT / "plandefinitions/questionnaires/post-fusion-screen.json").read_bytes())
EXTRACT = "/fhir/QuestionnaireResponse/$extract"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def created(hapi: str, resource: dict[str, Any]) -> str:
    answer = httpx.post(f"{hapi}/{resource['resourceType']}", json=resource, headers=FHIR_JSON, timeout=60)
    assert answer.status_code == 201, answer.text[:500]
    return f"{resource['resourceType']}/{answer.json()['id']}"


def answered(link_id: str, **value: Any) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [value]}


def screen(patient: str, user: str, identifier: dict[str, str], *red_flags: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{QUESTIONNAIRE['url']}|{QUESTIONNAIRE['version']}",
        "status": "completed",
        "identifier": identifier,
        "subject": {"reference": patient},
        "author": {"reference": user},
        "authored": "2026-10-30T10:00:00Z",
        "item": [
            {"linkId": "red-flags", "item": list(red_flags)},
            {
                "linkId": "outside-care",
                "item": [
                    answered(
                        "outside-care-therapy",
                        valueCoding={"system": "http://snomed.info/sct", "code": "91251008"},
                    ),
                    answered("outside-care-start", valueDate="2026-03-20"),
                    answered("outside-care-end", valueDate="2026-05-15"),
                ],
            },
        ],
    }


def post(hapi: str, bundle: dict[str, Any]) -> list[str]:
    """The status of each entry of the transaction's answer."""
    answer = httpx.post(hapi, json=bundle, headers=FHIR_JSON, timeout=120)
    assert answer.status_code == 200, answer.text[:1000]
    return [entry["response"]["status"].split()[0] for entry in answer.json()["entry"]]


def found(hapi: str, kind: str, **search: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{hapi}/{kind}", params={**search, "_count": "100"}, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    return [entry["resource"] for entry in answer.json().get("entry", [])]


@pytest.fixture
def people(hapi: str) -> tuple[str, str]:
    """A patient and the clinician who records for them, on HAPI (references must resolve there)."""
    patient = created(hapi, {"resourceType": "Patient", "name": [{"family": "Extract", "given": ["Test"]}]})
    user = created(hapi, {"resourceType": "Practitioner", "name": [{"family": "Recorder"}]})
    return patient, user


@pytest.mark.parametrize(
    "identifier",
    [
        {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        {"system": "http://ehr.example.org/forms", "value": f"form {uuid.uuid4().hex[:8]}|a,b$c"},
    ],
    ids=["urn-uuid", "search-specials"],
)
def test_a_second_submit_creates_nothing_and_a_later_one_links_to_the_stored_response(
    hapi, people, client_factory, identifier
):
    patient, user = people
    app = client_factory(fhir_allowed_servers=[hapi])
    headers = {"X-FHIR-Server": hapi, "Authorization": "Bearer any-token-hapi-accepts"}
    response = screen(patient, user, identifier, answered("rf-wound-drainage", valueBoolean=False))
    extracted = app.post(EXTRACT, json=response, headers=headers)
    assert extracted.status_code == 200, extracted.text
    bundle = extracted.json()

    assert post(hapi, bundle) == ["201"] * 3  # the response, its Observation, the outside course
    assert post(hapi, bundle) == ["200"] * 3  # every conditional create matched
    again = app.post(EXTRACT, json=response, headers=headers).json()  # a re-extraction: other fullUrls
    assert post(hapi, again) == ["200"] * 3

    (stored,) = found(hapi, "QuestionnaireResponse", subject=patient)
    (drainage,) = found(hapi, "Observation", subject=patient)
    (course,) = found(hapi, "Procedure", subject=patient)
    assert stored["identifier"]["value"] == identifier["value"]
    assert drainage["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{stored['id']}"}]
    assert drainage["performer"] == [{"reference": user}] and course["recorder"] == {"reference": user}

    later = copy.deepcopy(response)
    later["item"][0]["item"].append(answered("rf-neck-stiffness", valueBoolean=True))
    assert post(hapi, app.post(EXTRACT, json=later, headers=headers).json()) == ["200", "200", "201", "200"]
    observations = found(hapi, "Observation", subject=patient)
    assert len(observations) == 2 and len(found(hapi, "QuestionnaireResponse", subject=patient)) == 1
    assert all(
        o["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{stored['id']}"}] for o in observations
    )
