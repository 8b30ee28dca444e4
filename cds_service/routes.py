"""HTTP endpoints: discovery, service calls, feedback and health."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import Route

from .audit import audited
from .authenticate import authenticate
from .bodies import JSON, read_json
from .fhir import FhirFetcher
from .hooks import call_service
from .metrics import CARDS, FEEDBACK, PREFETCH_KEYS, metrics
from .openapi import openapi
from .protocol.feedback import FeedbackRequest
from .protocol.outcome import ClientError, issues_from_validation
from .rule_pages import plan_page
from .services import Service


def _fetcher(request: Request) -> FhirFetcher:
    """The FHIR fetcher for this caller: restricted to the FHIR servers its trust entry lists, if any."""
    client = getattr(request.state, "client", None)
    fetcher = request.app.state.fetcher
    return fetcher.for_servers(client.client.fhir_servers) if client is not None else fetcher


def _service(request: Request) -> Service:
    service_id = request.path_params["service_id"]
    service = request.app.state.rules.services.get(service_id)
    if service is None:
        raise ClientError.single(404, f"no CDS service with id '{service_id}'", "url", "not-found")
    return service


async def discovery(request: Request) -> JSON:
    with audited(request, "discovery") as audit:
        await authenticate(request)
        audit.status = 200
        return JSON(
            {"services": [service.discovery() for service in request.app.state.rules.services.values()]}
        )


async def service_call(request: Request) -> JSON:
    state = request.app.state
    settings = state.settings
    with audited(request, "call") as audit:
        await authenticate(request)
        ruleset, service = state.rules.ruleset, _service(request)
        body = await read_json(request, settings.max_body_bytes, settings.max_json_depth)
        audit.request_body(body)
        source_base = settings.public_base_url or str(request.base_url).rstrip("/")
        result = await call_service(
            service, ruleset, body, _fetcher(request), state.clock(), source_base, settings.max_resources
        )
        cards = result.response["cards"]
        state.cards.record(service.id, cards, state.clock())
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
    state = request.app.state
    with audited(request, "feedback") as audit:
        await authenticate(request)
        service = _service(request)
        body = await read_json(request, state.settings.max_body_bytes, state.settings.max_json_depth)
        try:
            submission = FeedbackRequest.model_validate(body)
        except ValidationError as error:
            raise ClientError(400, issues_from_validation(error)) from None
        stored = await state.feedback.add(service.id, submission.feedback, state.clock())
        rules = await state.cards.rules_of(row.card_uuid for row in stored)
        for row in stored:
            FEEDBACK.labels(rules.get(row.card_uuid, "unattributed"), row.outcome).inc()
        audit.status = 200
        audit.stored = len(stored)
        return JSON({"received": len(submission.feedback), "stored": len(stored)})


def count_cards(service: Service, cards: list[dict], given_keys: int, fetched_keys: int) -> None:
    for card in cards:
        CARDS.labels(service.id, card["source"]["topic"]["code"], card["indicator"]).inc()
    PREFETCH_KEYS.labels(service.id, "given").inc(given_keys)
    PREFETCH_KEYS.labels(service.id, "fetched").inc(fetched_keys)


async def healthz(request: Request) -> JSON:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> JSON:
    state = request.app.state
    checks = {
        "planDefinitions": bool(state.rules.services),
        "store": await state.database.ping(),
    }
    return JSON(
        {"status": "ready" if all(checks.values()) else "not ready", "checks": checks},
        status_code=200 if all(checks.values()) else 503,
    )


ROUTES = [
    Route("/cds-services", discovery, methods=["GET"]),
    Route("/cds-services/{service_id}", service_call, methods=["POST"]),
    Route("/cds-services/{service_id}/feedback", feedback, methods=["POST"]),
    Route("/rules/{plan_id}", plan_page, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
