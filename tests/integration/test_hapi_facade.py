"""What the FHIR facade answers is FHIR R4 as HAPI FHIR's validator reads it: the CapabilityStatement,
every `$data-requirements` module definition, and the CarePlans of `$apply` on the synthetic patients."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support.every_call import CASES, app_at_t0
from support.requests import USER


@pytest.fixture(scope="module")
def facade(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with app_at_t0(tmp_path_factory.mktemp("facade")) as client:
        yield client


def errors_of(hapi: str, resource: dict[str, Any]) -> list[str]:
    """HAPI's `$validate` errors for a resource (warnings and information are not errors)."""
    response = httpx.post(
        f"{hapi}/{resource['resourceType']}/$validate",
        json=resource,
        headers={"Content-Type": "application/fhir+json"},
        timeout=120,
    )
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", response.text[:500]
    return [
        f"{issue.get('diagnostics')} @ {issue.get('expression') or issue.get('location')}"
        for issue in outcome.get("issue", [])
        if issue["severity"] in {"error", "fatal"}
    ]


def test_hapi_finds_no_error_in_the_capability_statement(hapi, facade):
    assert errors_of(hapi, facade.get("/fhir/metadata").json()) == []


def test_hapi_finds_no_error_in_any_data_requirements(hapi, facade):
    checked = 0
    for kind in ("Library", "PlanDefinition"):
        for entry in facade.get(f"/fhir/{kind}").json()["entry"]:
            module = facade.get(f"/fhir/{kind}/{entry['resource']['id']}/$data-requirements").json()
            assert module["dataRequirement"]
            assert errors_of(hapi, module) == [], (kind, entry["resource"]["id"])
            checked += 1
    assert checked >= 12


def test_hapi_finds_no_error_in_the_care_plans_of_apply(hapi, facade):
    checked = 0
    for case in CASES[:12]:
        call = case["calls"][0]
        parameters = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "subject", "valueString": f"Patient/{case['id']}"},
                {"name": "hook", "valueString": call["hook"]},
                {"name": "practitioner", "valueString": USER},
                {
                    "name": "data",
                    "resource": {
                        "resourceType": "Bundle",
                        "type": "collection",
                        "entry": case["bundle"]["entry"],
                    },
                },
                *(
                    [{"name": "draftOrders", "resource": call["context"]["draftOrders"]}]
                    if "draftOrders" in call["context"]
                    else []
                ),
            ],
        }
        for plan in ("red-flags", "conservative-care", "revision", "hardware-removal", "neuromodulation"):
            response = facade.post(f"/fhir/PlanDefinition/{plan}/$apply", json=parameters)
            if response.status_code != 200:
                continue
            care_plan = response.json()
            if "action" not in care_plan["contained"][0]:
                continue
            assert errors_of(hapi, care_plan) == [], (case["id"], plan)
            checked += 1
    assert checked >= 5
