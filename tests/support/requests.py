"""CDS Hooks requests for the synthetic cases: prefetch answered from a case's record the way a FHIR server
would answer the service's own prefetch templates."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

from support.hooks import SERVICES

USER = "Practitioner/synthetic-clinician"
SEARCH_BASE = "http://synthetic.example.org/fhir"


def discovery_templates(client) -> dict[str, dict[str, str]]:
    """hook -> the prefetch templates of this project's service for that hook."""
    response = client.get("/cds-services")
    assert response.status_code == 200, response.text
    by_id = {service["id"]: service for service in response.json()["services"]}
    return {hook: by_id[service_id].get("prefetch", {}) for hook, service_id in SERVICES.items()}


def _token_matches(concepts: list[dict[str, Any]], token: str) -> bool:
    system, _, code = token.rpartition("|") if "|" in token else ("", "", token)
    for concept in concepts:
        for coding in concept.get("coding", []):
            if (not system or coding.get("system") == system) and (not code or coding.get("code") == code):
                return True
    return False


def _codes_of(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in (resource.get("code"), resource.get("medicationCodeableConcept")) if c]


def prefetch_for(case: dict[str, Any], templates: dict[str, str]) -> dict[str, Any]:
    """Answer each prefetch template from the case's record, as a FHIR server would."""
    patient_id = case["id"]
    resources = [entry["resource"] for entry in case["bundle"]["entry"]]
    prefetch: dict[str, Any] = {}
    for key, template in templates.items():
        query = template.replace("{{context.patientId}}", patient_id).replace("{{context.userId}}", USER)
        path, _, params = query.partition("?")
        if not params and "/" in path:
            kind, _, ident = path.partition("/")
            prefetch[key] = next(
                (r for r in resources if r["resourceType"] == kind and r["id"] == ident), None
            )
            continue
        matches = [r for r in resources if r["resourceType"] == path]
        for name, value in parse_qsl(params, keep_blank_values=True):
            if name in {"patient", "subject"}:
                reference = value if "/" in value else f"Patient/{value}"
                matches = [
                    r for r in matches if (r.get("subject") or r.get("patient")) == {"reference": reference}
                ]
            elif name == "code":
                tokens = value.split(",")
                matches = [r for r in matches if any(_token_matches(_codes_of(r), t) for t in tokens)]
            elif name == "status":
                matches = [r for r in matches if r.get("status") in value.split(",")]
            # any other search parameter is not narrowed: the service must still apply its own hygiene
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(matches)}
        if matches:
            bundle["entry"] = [
                {
                    "fullUrl": f"{SEARCH_BASE}/{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in matches
            ]
        prefetch[key] = bundle
    return prefetch


def hook_request(
    case: dict[str, Any], call: dict[str, Any], templates: dict[str, str], hook_instance: str | None = None
) -> dict[str, Any]:
    """The CDS Hooks request for one call of a case."""
    return {
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "hook": call["hook"],
        "context": {"userId": USER, "patientId": case["id"], **call["context"]},
        "prefetch": prefetch_for(case, templates),
    }
