"""A small FHIR R4 server under `/fhir` for the knowledge artifacts and the operations on them.

Read and search of PlanDefinition, Library, ValueSet, CodeSystem and Questionnaire (as loaded, with site
additions and computed data requirements), `$data-requirements` on a Library or PlanDefinition, and
`PlanDefinition/$apply`, which evaluates with the same engine as the CDS services, and SDC's
`QuestionnaireResponse/$extract` for the post-fusion screen. The artifacts are public knowledge, like the
rule pages; the two operations read patient data, so they are authenticated like a service call. `$extract`
also serves the SMART capture app, which authenticates with the EHR's access token instead
(`smart_access`). `$apply` does not: it reads nothing but what is posted, and the app does not call it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..errors import InvalidRequest, NotFound
from ..forms.extract import extract
from ..hooks.apply import apply_plan, parse_apply
from ..plans.data_requirements import module_definition_of
from ..plans.model import RuleSet
from .audit import audited
from .authenticate import authenticate
from .bodies import read_json
from .responses import JSON
from .smart_access import app_servers, smart_caller
from .state import state

FHIR_JSON = "application/fhir+json"
ARTIFACTS = ("PlanDefinition", "Library", "ValueSet", "CodeSystem", "Questionnaire")
SEARCH = {  # search parameter -> the element it matches exactly
    "_id": "id",
    "url": "url",
    "name": "name",
    "version": "version",
    "status": "status",
    "title": "title",
}
OPERATIONS = {
    "PlanDefinition": [
        ("apply", "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply"),
        ("data-requirements", "http://hl7.org/fhir/OperationDefinition/PlanDefinition-data-requirements"),
    ],
    "Library": [("data-requirements", "http://hl7.org/fhir/OperationDefinition/Library-data-requirements")],
}
EXTRACT = {  # SDC's operation on a resource type this server does not store
    "type": "QuestionnaireResponse",
    "operation": [
        {
            "name": "extract",
            "definition": "http://hl7.org/fhir/uv/sdc/OperationDefinition/QuestionnaireResponse-extract",
        }
    ],
}


class FhirJSON(JSON):
    media_type = FHIR_JSON


def _kind(request: Request) -> str:
    kind: str = request.path_params["kind"]
    if kind not in ARTIFACTS:
        raise NotFound.single(f"this server holds {', '.join(ARTIFACTS)}; not {kind}", "url", "not-supported")
    return kind


def _artifact(ruleset: RuleSet, kind: str, artifact_id: str) -> dict[str, Any]:
    found = ruleset.artifacts.get(kind, {}).get(artifact_id)
    if found is None:
        raise NotFound.single(f"no {kind} with id '{artifact_id}'", "url", "not-found")
    return found


async def metadata(request: Request) -> FhirJSON:
    """The CapabilityStatement: what this facade serves, so FHIR clients and tools can discover it."""
    shared = state(request)
    base = shared.settings.public_base_url or str(request.base_url).rstrip("/")
    resources = [
        {
            "type": kind,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{kind}",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": "token" if name in {"_id", "status"} else "string"} for name in SEARCH
            ],
            **(
                {"operation": [{"name": name, "definition": url} for name, url in OPERATIONS[kind]]}
                if kind in OPERATIONS
                else {}
            ),
        }
        for kind in ARTIFACTS
    ]
    return FhirJSON(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-12-02",
            "publisher": "Post-fusion pain CDS project",
            "kind": "instance",
            "software": {"name": "postfusion-cds"},
            "implementation": {"description": "Knowledge artifacts and operations", "url": f"{base}/fhir"},
            "fhirVersion": "4.0.1",
            "format": [FHIR_JSON, "json"],
            "rest": [{"mode": "server", "resource": [*resources, EXTRACT]}],
        }
    )


async def read(request: Request) -> FhirJSON:
    ruleset = state(request).rules.ruleset
    return FhirJSON(_artifact(ruleset, _kind(request), request.path_params["id"]))


async def search(request: Request) -> FhirJSON:
    kind = _kind(request)
    criteria = {}
    for name, value in request.query_params.multi_items():
        if name not in SEARCH:
            raise InvalidRequest.single(
                f"unknown search parameter '{name}'; this server searches by {', '.join(SEARCH)}", name
            )
        criteria[SEARCH[name]] = value
    found = [
        resource
        for _, resource in sorted(state(request).rules.ruleset.artifacts.get(kind, {}).items())
        if all(str(resource.get(element, "")) == value for element, value in criteria.items())
    ]
    base = str(request.base_url).rstrip("/")
    return FhirJSON(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": [{"relation": "self", "url": str(request.url)}],
            "entry": [
                {"fullUrl": f"{base}/fhir/{kind}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in found
            ],
        }
    )


async def data_requirements(request: Request) -> FhirJSON:
    kind = request.path_params["kind"]
    if kind not in {"Library", "PlanDefinition"}:
        raise NotFound.single("$data-requirements is an operation on Library and PlanDefinition", "url")
    ruleset = state(request).rules.ruleset
    found = module_definition_of(ruleset, kind, request.path_params["id"])
    if found is None:
        raise NotFound.single(f"no {kind} with id '{request.path_params['id']}'", "url", "not-found")
    return FhirJSON(found)


async def apply(request: Request) -> FhirJSON:
    shared = state(request)
    settings = shared.settings
    with audited(request, "apply") as audit:
        await authenticate(request)
        ruleset = shared.rules.ruleset
        plan_id = request.path_params["id"]
        plan = next((p for p in ruleset.plans if p.id == plan_id), None)
        if plan is None:
            raise NotFound.single(f"no PlanDefinition with id '{plan_id}'", "url", "not-found")
        body = await read_json(request, settings.max_body_bytes, settings.max_json_depth)
        given = parse_apply(body)
        if given.hook not in plan.hooks():
            raise InvalidRequest.single(
                f"plan '{plan_id}' gives no cards at {given.hook}; it serves {sorted(plan.hooks())}",
                "parameter",
            )
        service = next(s for s in shared.rules.services.values() if s.hook == given.hook)
        source_base = settings.public_base_url or str(request.base_url).rstrip("/")
        care_plan = await apply_plan(
            plan, ruleset, service, given, shared.clock(), source_base, settings.max_resources
        )
        audit.status = 200
        return FhirJSON(care_plan)


def _response_of(body: Any) -> dict[str, Any]:
    """The QuestionnaireResponse, sent as itself or as SDC's `questionnaire-response` parameter."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for parameter in body.get("parameter") or ():
            if isinstance(parameter, dict) and parameter.get("name") == "questionnaire-response":
                body = parameter.get("resource")
                break
    if not isinstance(body, dict) or body.get("resourceType") != "QuestionnaireResponse":
        raise InvalidRequest.single(
            "$extract takes a QuestionnaireResponse, or Parameters with 'questionnaire-response'",
            "resourceType",
        )
    return body


async def extract_response(request: Request) -> FhirJSON:
    """SDC `QuestionnaireResponse/$extract`: the Observations and Procedures a completed screen records."""
    shared = state(request)
    with audited(request, "extract") as audit:
        app = smart_caller(request.headers, app_servers(shared.settings, shared.verifier))
        if app is None:
            await authenticate(request)
        body = await read_json(request, shared.settings.max_body_bytes, shared.settings.max_json_depth)
        response = _response_of(body)
        if app is not None:
            await shared.smart.authorise(shared.fetcher, app, response)
        canonical_url = str(response.get("questionnaire") or "").partition("|")[0]
        questionnaire = next(
            (
                q
                for q in shared.rules.ruleset.artifacts.get("Questionnaire", {}).values()
                if q.get("url") == canonical_url
            ),
            None,
        )
        if questionnaire is None:
            raise InvalidRequest.single(
                f"no Questionnaire '{canonical_url}' here; see /fhir/Questionnaire", "questionnaire"
            )
        bundle = extract(questionnaire, response, shared.clock())
        audit.status = 200
        return FhirJSON(bundle)


ROUTES = [
    Route("/fhir/metadata", metadata, methods=["GET"]),
    Route("/fhir/QuestionnaireResponse/$extract", extract_response, methods=["POST"]),
    Route("/fhir/PlanDefinition/{id}/$apply", apply, methods=["POST"]),
    Route("/fhir/{kind}/{id}/$data-requirements", data_requirements, methods=["GET", "POST"]),
    Route("/fhir/{kind}/{id}", read, methods=["GET"]),
    Route("/fhir/{kind}", search, methods=["GET"]),
]
