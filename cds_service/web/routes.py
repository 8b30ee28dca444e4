"""HTTP endpoints: discovery, service calls, feedback, rule pages, OpenAPI, metrics and health."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import InvalidRequest, NotFound
from ..hooks import Service, call_service
from ..ops.metrics import CARDS, FEEDBACK, PREFETCH_KEYS, exposition
from ..protocol.feedback import FeedbackRequest
from ..protocol.outcome import issues_from_validation
from ..store.feedback_checks import feedback_problems
from .audit import audited
from .authenticate import authenticate
from .bodies import read_json
from .capture import ROUTES as CAPTURE_ROUTES
from .data_page import data_page
from .fhir_facade import ROUTES as FHIR_ROUTES
from .openapi import openapi
from .responses import JSON
from .rule_pages import plan_page
from .state import fetcher_for, patient_scope, state


def _service(request: Request) -> Service:
    service_id = request.path_params["service_id"]
    service = state(request).rules.services.get(service_id)
    if service is None:
        raise NotFound.single(f"no CDS service with id '{service_id}'", "url", "not-found")
    return service


async def discovery(request: Request) -> JSON:
    with audited(request, "discovery") as audit:
        await authenticate(request)
        audit.status = 200
        services = state(request).rules.services.values()
        return JSON({"services": [service.discovery() for service in services]})


async def service_call(request: Request) -> JSON:
    shared = state(request)
    settings = shared.settings
    with audited(request, "call") as audit:
        await authenticate(request)
        ruleset, service = shared.rules.ruleset, _service(request)
        body = await read_json(request, settings.max_body_bytes, settings.max_json_depth)
        audit.request_body(body)
        source_base = settings.public_base_url or str(request.base_url).rstrip("/")
        now = shared.clock()
        result = await call_service(
            service,
            ruleset,
            body,
            fetcher_for(request),
            now,
            source_base,
            settings.max_resources,
            quiet=shared.quiet,
            caller=patient_scope(request),
        )
        cards = result.response["cards"]
        shared.cards.remember(service.id, cards, shared.clock())
        audit.status = 200
        audit.rules = [card["source"]["topic"]["code"] for card in cards]
        count_cards(service, cards, len(service.prefetch) - result.fetched_keys, result.fetched_keys)
        audit.resources, audit.fetched_keys, audit.failed_plans = (
            result.resources,
            result.fetched_keys,
            result.failed_plans,
        )
        return JSON(result.response)


async def feedback(request: Request) -> JSON:
    shared = state(request)
    with audited(request, "feedback") as audit:
        await authenticate(request)
        service = _service(request)
        body = await read_json(request, shared.settings.max_body_bytes, shared.settings.max_json_depth)
        try:
            submission = FeedbackRequest.model_validate(body)
        except ValidationError as error:
            raise InvalidRequest(issues_from_validation(error)) from None
        received_at = shared.clock()
        issued = await shared.cards.issued(item.card for item in submission.feedback)
        problems = feedback_problems(service.id, submission.feedback, issued, received_at)
        if problems:  # nothing of the submission is stored, nor snoozes anything
            raise InvalidRequest(problems)
        stored = await shared.feedback.add(service.id, submission.feedback, received_at)
        if shared.quiet is not None:  # every override, not only new ones: a retry still snoozes (V2-30)
            overridden = [item.card for item in submission.feedback if item.outcome == "overridden"]
            await shared.quiet.acknowledge(overridden, received_at, shared.rules.ruleset.params)
        for row in stored:
            card = issued.get(row.card_uuid)
            FEEDBACK.labels(card.rule_id if card else "unattributed", row.outcome).inc()
        audit.status = 200
        audit.stored = len(stored)
        return JSON({"received": len(submission.feedback), "stored": len(stored)})


def count_cards(service: Service, cards: list[dict[str, Any]], given_keys: int, fetched_keys: int) -> None:
    for card in cards:
        CARDS.labels(service.id, card["source"]["topic"]["code"], card["indicator"]).inc()
    PREFETCH_KEYS.labels(service.id, "given").inc(given_keys)
    PREFETCH_KEYS.labels(service.id, "fetched").inc(fetched_keys)


async def metrics(request: Request) -> Response:
    body, media_type = exposition()
    return Response(body, media_type=media_type)


async def healthz(request: Request) -> JSON:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> JSON:
    shared = state(request)
    checks = {
        "planDefinitions": bool(shared.rules.services),
        "store": await shared.database.ping(),
    }
    return JSON(
        {"status": "ready" if all(checks.values()) else "not ready", "checks": checks},
        status_code=200 if all(checks.values()) else 503,
    )


ROUTES = [
    Route("/cds-services", discovery, methods=["GET"]),
    Route("/cds-services/{service_id}", service_call, methods=["POST"]),
    Route("/cds-services/{service_id}/feedback", feedback, methods=["POST"]),
    Route("/rules/data", data_page, methods=["GET"]),
    Route("/rules/{plan_id}", plan_page, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    *FHIR_ROUTES,
    *CAPTURE_ROUTES,
]
