"""The FHIR facade under /fhir: the CapabilityStatement, read and search of the knowledge artifacts,
`$data-requirements`, and `PlanDefinition/$apply`, whose CarePlan carries the same decisions, actions and
explanation as the cards of the same call, on every fixture call."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.hooks.apply import PRIORITY
from cds_service.plans import canonical

from support.every_call import CASES, app_at_t0, every_call
from support.requests import USER


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with app_at_t0(tmp_path_factory.mktemp("facade")) as client:
        yield client


def valid_r4(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_the_capability_statement_lists_the_artifacts_and_operations(app_client):
    response = app_client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    valid_r4(statement)
    assert statement["fhirVersion"] == "4.0.1"
    served = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(served) == {
        "PlanDefinition",
        "Library",
        "ValueSet",
        "CodeSystem",
        "Questionnaire",
        "QuestionnaireResponse",
    }
    assert [op["name"] for op in served["QuestionnaireResponse"]["operation"]] == ["extract"]
    assert {op["name"] for op in served["PlanDefinition"]["operation"]} == {"apply", "data-requirements"}


def test_every_loaded_artifact_can_be_read_and_found_by_url(app_client):
    bundle = app_client.get("/fhir/ValueSet").json()
    assert bundle["total"] >= 90
    for kind in ("PlanDefinition", "Library", "ValueSet", "CodeSystem"):
        for entry in app_client.get(f"/fhir/{kind}").json()["entry"]:
            resource = entry["resource"]
            read = app_client.get(f"/fhir/{kind}/{resource['id']}")
            assert read.status_code == 200 and read.json() == resource
            found = app_client.get(f"/fhir/{kind}", params={"url": resource["url"]}).json()
            assert [e["resource"]["id"] for e in found["entry"]] == [resource["id"]]


def test_a_library_carries_the_data_requirements_computed_from_its_facts(app_client):
    library = app_client.get("/fhir/Library/postfusion-common").json()
    valid_r4(library)
    requirements = library["dataRequirement"]
    by_type = {r["type"] for r in requirements}
    assert {"Condition", "Procedure", "Observation"} <= by_type
    crp = [
        r
        for r in requirements
        if any(f.get("valueSet", "").endswith("/ValueSet/Crp") for f in r.get("codeFilter", []))
    ]
    assert crp, "the CRP red flag reads CRP results"
    assert crp[0]["codeFilter"][-1] == {
        "path": "status",
        "code": [{"code": "final"}, {"code": "amended"}, {"code": "corrected"}],
    }


def test_data_requirements_operation_follows_facts_into_other_libraries(app_client):
    response = app_client.get("/fhir/PlanDefinition/revision/$data-requirements")
    assert response.status_code == 200
    module = response.json()
    valid_r4(module)
    assert module["type"]["coding"][0]["code"] == "module-definition"
    depends = {a["resource"] for a in module["relatedArtifact"]}
    assert "http://postfusion-cds.org/fhir/Library/postfusion-common" in depends
    value_sets = {f.get("valueSet") for r in module["dataRequirement"] for f in r.get("codeFilter", [])}
    assert any(url and url.endswith("/ValueSet/ImagingSymptomCorrelation") for url in value_sets), value_sets
    windowed = [r for r in module["dataRequirement"] if "dateFilter" in r]
    assert windowed and all(r["dateFilter"][0]["valueDuration"]["code"] == "d" for r in windowed)
    library = app_client.get("/fhir/Library/postfusion-common/$data-requirements").json()
    assert (
        library["dataRequirement"]
        == app_client.get("/fhir/Library/postfusion-common").json()["dataRequirement"]
    )


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/fhir/PlanDefinition/no-such-plan", 404),
        ("/fhir/Patient/p01", 404),
        ("/fhir/ValueSet?colour=blue", 400),
        ("/fhir/Library/no-such/$data-requirements", 404),
        ("/fhir/ValueSet/crp/$data-requirements", 404),
    ],
)
def test_what_the_facade_does_not_hold_is_a_clear_outcome(app_client, path, status):
    response = app_client.get(path)
    assert response.status_code == status
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"]


def apply_parameters(case: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "subject", "valueString": f"Patient/{case['id']}"},
        {"name": "hook", "valueString": call["hook"]},
        {"name": "practitioner", "valueString": USER},
        {
            "name": "data",
            "resource": {"resourceType": "Bundle", "type": "collection", "entry": case["bundle"]["entry"]},
        },
    ]
    context = call["context"]
    if "draftOrders" in context:
        parameters.append({"name": "draftOrders", "resource": context["draftOrders"]})
    parameters += [{"name": "selection", "valueString": s} for s in context.get("selections", [])]
    return {"resourceType": "Parameters", "parameter": parameters}


def card_decision(card: dict[str, Any]) -> dict[str, Any]:
    """What a card decides and says, without its uuids."""
    extension = card.get("extension") or {}
    return {
        "rule": card["source"]["topic"]["code"],
        "summary": card["summary"],
        "detail": card.get("detail"),
        "priority": PRIORITY[card["indicator"]],
        "criteria": [
            (
                s["id"],
                s["status"],
                tuple(s.get("evidence", [])),
                tuple((p["id"], p["status"]) for p in s.get("parts", [])),
            )
            for s in extension.get(canonical.CRITERIA_EXTENSION, [])
        ],
        "draft": extension.get(canonical.DRAFT_EXTENSION),
        "suggestions": [
            (s["label"], a.get("resource") or a.get("resourceId"))
            for s in card.get("suggestions", [])
            for a in s["actions"]
        ],
        "source": card["source"]["label"],
    }


def action_decision(action: dict[str, Any], contained: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The same, read back from a RequestGroup action."""
    criteria, draft = [], None
    for extension in action.get("extension", []):
        if extension["url"] == canonical.DRAFT_ORDER:
            draft = extension["valueReference"]["reference"]
            continue
        parts = {}
        evidence, sub_parts = [], []
        for part in extension["extension"]:
            if part["url"] == "evidence":
                evidence.append(part["valueReference"]["reference"])
            elif part["url"] == "part":
                items = {p["url"]: p.get("valueString", p.get("valueCode")) for p in part["extension"]}
                sub_parts.append((items["id"], items["status"]))
            else:
                parts[part["url"]] = part.get("valueString", part.get("valueCode"))
        criteria.append((parts["id"], parts["status"], tuple(evidence), tuple(sub_parts)))
    suggestions = []
    for sub in action.get("action", []):
        reference = sub["resource"]["reference"]
        resource = contained.get(reference)
        suggestions.append(
            (sub["title"], {k: v for k, v in resource.items() if k != "id"} if resource else reference)
        )
    return {
        "rule": action["code"][0]["coding"][0]["code"],
        "summary": action["title"],
        "detail": action.get("description"),
        "priority": action["priority"],
        "criteria": criteria,
        "draft": draft,
        "suggestions": suggestions,
        "source": action["documentation"][0]["display"],
    }


def test_apply_gives_the_cards_decisions_on_every_fixture_call(app_client):
    plans = {
        entry["resource"]["id"]: entry["resource"]
        for entry in app_client.get("/fhir/PlanDefinition").json()["entry"]
    }
    plan_rules = {
        plan_id: {a["code"][0]["coding"][0]["code"] for a in plan.get("action", []) if a.get("code")}
        for plan_id, plan in plans.items()
    }
    compared = actions = 0
    for case, call, cards in every_call(app_client):
        for plan_id, rules in plan_rules.items():
            response = app_client.post(
                f"/fhir/PlanDefinition/{plan_id}/$apply", json=apply_parameters(case, call)
            )
            if response.status_code == 400:  # the plan serves no card at this hook
                assert not any(c["source"]["topic"]["code"] in rules for c in cards)
                continue
            assert response.status_code == 200, response.text
            care_plan = response.json()
            group = care_plan["contained"][0]
            contained = {f"#{r['id']}": r for r in care_plan["contained"][1:]}
            expected = [card_decision(c) for c in cards if c["source"]["topic"]["code"] in rules]
            got = [action_decision(a, contained) for a in group.get("action", [])]
            assert got == expected, (case["id"], call["name"], plan_id)
            compared += 1
            actions += len(got)
    assert compared > 300 and actions > 100, (compared, actions)


def test_the_care_plan_is_valid_r4(app_client):
    case = next(c for c in CASES if c["id"].startswith("p05"))
    call = next(call for call in case["calls"] if call["hook"] == "order-sign")
    response = app_client.post("/fhir/PlanDefinition/revision/$apply", json=apply_parameters(case, call))
    assert response.status_code == 200, response.text
    care_plan = response.json()
    assert care_plan["contained"][0]["action"][0]["code"][0]["coding"][0]["code"] == "REV-MET"
    valid_r4(care_plan)
    for resource in care_plan["contained"]:
        valid_r4(resource)
    assert care_plan["instantiatesCanonical"] == ["http://postfusion-cds.org/fhir/PlanDefinition/revision"]


@pytest.mark.parametrize(
    ("parameters", "location"),
    [
        ([], "parameter"),
        ([{"name": "subject", "valueString": "Practitioner/1"}], "parameter[0]"),
        (
            [{"name": "subject", "valueString": "Patient/1"}, {"name": "colour", "valueString": "x"}],
            "parameter[1]",
        ),
        (
            [
                {"name": "subject", "valueString": "Patient/1"},
                {"name": "data", "resource": {"resourceType": "Patient"}},
            ],
            "parameter[1].resource",
        ),
        (
            [
                {"name": "subject", "valueString": "Patient/1"},
                {"name": "hook", "valueString": "encounter-start"},
            ],
            "parameter[1]",
        ),
    ],
)
def test_bad_apply_parameters_are_named(app_client, parameters, location):
    response = app_client.post(
        "/fhir/PlanDefinition/revision/$apply", json={"resourceType": "Parameters", "parameter": parameters}
    )
    assert response.status_code == 400
    issues = response.json()["issue"]
    assert any(location in issue.get("expression", [""])[0] for issue in issues), issues
