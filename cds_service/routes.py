"""HTTP endpoints: discovery, service calls, feedback and health."""

from __future__ import annotations

import logging
import time

from pydantic import ValidationError
from starlette.requests import Request
from starlette.routing import Route

from .bodies import JSON, read_json
from .hooks import call_service
from .protocol.feedback import FeedbackRequest
from .protocol.outcome import ClientError, issues_from_validation
from .rule_pages import plan_page

log = logging.getLogger("cds_service.http")


def _service(request: Request):  # type: ignore[no-untyped-def]
    service_id = request.path_params["service_id"]
    service = request.app.state.rules.services.get(service_id)
    if service is None:
        raise ClientError.single(404, f"no CDS service with id '{service_id}'", "url", "not-found")
    return service


async def discovery(request: Request) -> JSON:
    return JSON({"services": [service.discovery() for service in request.app.state.rules.services.values()]})


async def service_call(request: Request) -> JSON:
    state = request.app.state
    rules = state.rules
    ruleset, service = rules.ruleset, _service(request)
    body = await read_json(request, state.settings.max_body_bytes)
    started = time.perf_counter()
    source_base = state.settings.public_base_url or str(request.base_url).rstrip("/")
    result = await call_service(service, ruleset, body, state.fetcher, state.clock(), source_base)
    log.info(
        "service=%s resources=%d fetched_keys=%d cards=%s failed_plans=%s ms=%.1f",
        service.id,
        result.resources,
        result.fetched_keys,
        ",".join(card["source"]["topic"]["code"] for card in result.response["cards"]) or "-",
        ",".join(result.failed_plans) or "-",
        (time.perf_counter() - started) * 1000,
    )
    return JSON(result.response)


async def feedback(request: Request) -> JSON:
    state = request.app.state
    service = _service(request)
    body = await read_json(request, state.settings.max_body_bytes)
    try:
        submission = FeedbackRequest.model_validate(body)
    except ValidationError as error:
        raise ClientError(400, issues_from_validation(error)) from None
    stored = await state.store.add(service.id, submission.feedback)
    log.info("service=%s feedback items=%d new=%d", service.id, len(submission.feedback), stored)
    return JSON({"received": len(submission.feedback), "stored": stored})


async def healthz(request: Request) -> JSON:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> JSON:
    state = request.app.state
    checks = {
        "planDefinitions": bool(state.rules.services),
        "store": await state.store.ping(),
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
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
