"""The OpenAPI 3.0.3 description of the service, built from the wire models so it cannot drift from them.

Request and card schemas come from the pydantic models; only bodies that have no model (discovery, health,
the OperationOutcome every error carries) are written out here.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..hooks import Service
from ..protocol.feedback import FeedbackRequest
from ..protocol.request import CONTEXTS, FHIR_ID, HOOKS, REFERENCE, UUID, HookRequest
from ..protocol.response import Action, Card
from .fhir_facade import ARTIFACTS
from .state import state

REF = "#/components/schemas/{model}"
FHIR_RESOURCE = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
}

# What the request models check in validators, which pydantic cannot express in their JSON schema.
PATTERNS = {"hookInstance": UUID, "userId": REFERENCE, "patientId": FHIR_ID, "encounterId": FHIR_ID}

ERRORS = {
    "400": "The body is malformed, too deeply nested, or not a valid request; `expression` names the member",
    "401": "The CDS client's bearer JWT is missing or rejected (unless the service runs with CDS_AUTH=off), "
    "or the FHIR server named by X-FHIR-Server did not accept the SMART access token",
    "403": "X-FHIR-Server names a FHIR server the service may not contact, or that server does not show the "
    "patient to the access token",
    "404": "No such CDS service, plan definition or route",
    "405": "The method is not allowed on this path (any path; the `Allow` header lists the allowed ones)",
    "412": "Prefetch data the rules need was neither sent nor could be fetched from `fhirServer`",
    "413": "The body or the number of FHIR resources in one call is over the configured limit",
    "415": "The Content-Type is not JSON",
    "502": "The FHIR server named by X-FHIR-Server could not be reached or gave no usable answer",
    "500": "An internal error; the service logged it",
    "503": "Evaluating the call ran out of memory: nothing was answered; try again after `Retry-After`",
}

HAND_WRITTEN: dict[str, dict[str, Any]] = {
    "OperationOutcome": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "CdsResponse": {
        "type": "object",
        "required": ["cards"],
        "properties": {
            "cards": {"type": "array", "items": {"$ref": REF.format(model="Card")}},
            "systemActions": {"type": "array", "items": {"$ref": REF.format(model="Action")}},
        },
    },
    "FeedbackReceipt": {
        "type": "object",
        "required": ["received", "stored"],
        "properties": {"received": {"type": "integer"}, "stored": {"type": "integer"}},
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "not ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
    },
}


def _openapi30(node: Any) -> Any:
    """Pydantic writes JSON Schema 2020-12; OpenAPI 3.0 spells `null` as `nullable` and has no `const`."""
    if isinstance(node, list):
        return [_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _openapi30(value) for key, value in node.items()}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    options = node.get("anyOf", [])
    if {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del node["anyOf"]
        only = rest[0] if len(rest) == 1 else {"anyOf": rest}
        node.update({"allOf": [only]} if "$ref" in only else only, nullable=True)
    return node


def component_schemas() -> dict[str, dict[str, Any]]:
    """Every model's schema under its own name, with the hook request's context as the union of contexts."""
    models: list[type[BaseModel]] = [HookRequest, *CONTEXTS.values(), FeedbackRequest]
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "validation") for model in models]
    _, top = models_json_schema(
        [*modes, (Card, "serialization"), (Action, "serialization")], ref_template=REF
    )
    schemas = _openapi30(top["$defs"])
    request = schemas["HookRequest"]["properties"]
    request["hook"]["enum"] = list(HOOKS)
    request["context"] = {"anyOf": [{"$ref": REF.format(model=m.__name__)} for m in CONTEXTS.values()]}
    for name in ["HookRequest", *(model.__name__ for model in CONTEXTS.values())]:
        for field, pattern in PATTERNS.items():
            if field in schemas[name]["properties"]:
                schemas[name]["properties"][field]["pattern"] = pattern.pattern
    return {**schemas, **HAND_WRITTEN}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=schema)}}},
    }


def _operation(summary: str, answers: dict[str, Any], errors: list[int], **extra: Any) -> dict[str, Any]:
    """`answers` are the operation's own responses; `errors` the shared OperationOutcome ones it can give.
    The operations that can answer 401 are the ones that verify the caller's JWT."""
    shared = {str(status): {"$ref": f"#/components/responses/{status}"} for status in errors}
    security: dict[str, Any] = {"security": [{"cdsHooksJwt": []}]} if 401 in errors else {}
    return {"summary": summary, **security, **extra, "responses": answers | shared}


def build_openapi(services: Mapping[str, Service]) -> dict[str, Any]:
    """The OpenAPI document for the loaded services: `service_id` is an enum of their ids."""
    service_id = {"type": "string", "enum": list(services)} if services else {"type": "string"}
    path_param = {"name": "service_id", "in": "path", "required": True, "schema": service_id}
    plan_param = {"name": "plan_id", "in": "path", "required": True, "schema": {"type": "string"}}
    discovery = {
        "type": "object",
        "required": ["services"],
        "properties": {
            "services": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "hook", "title", "description"],
                    "properties": {
                        "id": service_id,
                        "hook": {"type": "string", "enum": list(HOOKS)},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "usageRequirements": {"type": "string"},
                        "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            }
        },
    }

    def body(schema: str) -> dict[str, Any]:
        return {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=schema)}}},
        }

    call_errors = [400, 401, 404, 412, 413, 415, 500, 503]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Back pain after lumbar fusion: CDS Hooks 2.0 service",
            "version": version("cds-service"),
            "description": "Every 4xx and 5xx answer, including 404 and 405 of unknown routes, is a FHIR "
            "OperationOutcome.",
        },
        "paths": {
            "/cds-services": {
                "get": _operation(
                    "Discovery: the CDS services offered",
                    {
                        "200": {
                            "description": "The services",
                            "content": {"application/json": {"schema": discovery}},
                        }
                    },
                    [401, 500],
                )
            },
            "/cds-services/{service_id}": {
                "parameters": [path_param],
                "post": _operation(
                    "Call a CDS service",
                    {"200": _json("CdsResponse", "The cards")},
                    call_errors,
                    requestBody=body("HookRequest"),
                ),
            },
            "/cds-services/{service_id}/feedback": {
                "parameters": [path_param],
                "post": _operation(
                    "Feedback on cards a clinician accepted or overrode",
                    {
                        "200": _json(
                            "FeedbackReceipt", "How many feedback entries were received and newly stored"
                        )
                    },
                    [400, 401, 404, 413, 415, 500, 503],
                    requestBody=body("FeedbackRequest"),
                ),
            },
            "/rules/{plan_id}": {
                "parameters": [plan_param],
                "get": _operation(
                    "The readable page of a plan definition, where a card's source links",
                    {
                        "200": {
                            "description": "The page",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                    [404, 500],
                ),
            },
            "/rules/data": {
                "get": _operation(
                    "The integrator's contract: per hook, what the rules read and the cards it drives",
                    {
                        "200": {
                            "description": "The page",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        }
                    },
                    [500],
                ),
            },
            **fhir_paths(),
            "/capture/config.json": {
                "get": _operation(
                    "The capture app's launch settings: client id, SMART scopes, the Questionnaire it opens "
                    "without a card (the app's own files are served under /capture/)",
                    {
                        "200": {
                            "description": "The settings",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                    [404, 500],
                )
            },
            "/healthz": {"get": _operation("Liveness", {"200": _json("Health", "The process is up")}, [500])},
            "/readyz": {
                "get": _operation(
                    "Readiness: plan definitions loaded and the feedback store reachable",
                    {"200": _json("Readiness", "Ready"), "503": _json("Readiness", "Not ready")},
                    [500],
                )
            },
            "/metrics": {
                "get": _operation(
                    "Prometheus metrics (counts and latencies; no patient data)",
                    {
                        "200": {
                            "description": "Prometheus text exposition format 0.0.4",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                    [500],
                )
            },
            "/openapi.json": {
                "get": _operation(
                    "This document",
                    {
                        "200": {
                            "description": "OpenAPI 3.0.3",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                    [500],
                )
            },
        },
        "components": {
            "schemas": component_schemas(),
            "responses": {status: _json("OperationOutcome", text) for status, text in ERRORS.items()},
            "securitySchemes": {
                "cdsHooksJwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The CDS Hooks 2.0 JWT of a trusted CDS client",
                },
                "smartAccessToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A SMART on FHIR access token for the FHIR server named by X-FHIR-Server",
                },
            },
        },
    }


def _fhir(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/fhir+json": {"schema": FHIR_RESOURCE}}}


def fhir_paths() -> dict[str, Any]:
    """The FHIR facade: knowledge artifacts and the operations on them (bodies are FHIR resources)."""
    kind = {
        "name": "kind",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(ARTIFACTS)},
    }
    artifact_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    fhir_body = {"required": True, "content": {"application/json": {"schema": FHIR_RESOURCE}}}
    requirements = _operation(
        "$data-requirements: the effective data requirements of a Library or PlanDefinition",
        {"200": _fhir("A module-definition Library")},
        [404, 500],
    )
    return {
        "/fhir/metadata": {
            "get": _operation("The FHIR CapabilityStatement", {"200": _fhir("CapabilityStatement")}, [500])
        },
        "/fhir/{kind}": {
            "parameters": [kind],
            "get": _operation(
                "Search knowledge artifacts", {"200": _fhir("A searchset Bundle")}, [400, 404, 500]
            ),
        },
        "/fhir/{kind}/{id}": {
            "parameters": [kind, artifact_id],
            "get": _operation(
                "Read a knowledge artifact", {"200": _fhir("The artifact as loaded")}, [404, 500]
            ),
        },
        "/fhir/{kind}/{id}/$data-requirements": {
            "parameters": [kind, artifact_id],
            "get": requirements,
            "post": requirements,
        },
        "/fhir/PlanDefinition/{id}/$apply": {
            "parameters": [artifact_id],
            "post": _operation(
                "$apply: a plan definition applied to a subject and its data, as a CarePlan",
                {"200": _fhir("A CarePlan with a contained RequestGroup")},
                [400, 401, 404, 413, 415, 500],
                requestBody=fhir_body,
            ),
        },
        "/fhir/QuestionnaireResponse/$extract": {
            "post": _operation(
                "SDC $extract: the resources a completed post-fusion screen records",
                {"200": _fhir("A transaction Bundle, idempotent when the response has an identifier")},
                [400, 401, 403, 413, 415, 500, 502],
                description="Called by a CDS client with its JWT, or by the SMART capture app with the EHR's "
                "access token and X-FHIR-Server: the service then reads the response's patient from that "
                "server with the token, and answers only if the server shows the patient to it.",
                parameters=[
                    {
                        "name": "X-FHIR-Server",
                        "in": "header",
                        "required": False,
                        "description": "The EHR's FHIR base URL the SMART access token is for (the launch's "
                        "iss); it must be a FHIR server a hook call's fhirServer may be",
                        "schema": {"type": "string", "format": "uri"},
                    }
                ],
                security=[{"cdsHooksJwt": []}, {"smartAccessToken": []}],
                requestBody=fhir_body,
            ),
        },
    }


async def openapi(request: Request) -> JSONResponse:
    """The description of the services loaded right now (they change when the plan definitions reload)."""
    return JSONResponse(build_openapi(state(request).rules.services))
