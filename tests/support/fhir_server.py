"""A loopback FHIR R4 server for tests: searches by patient and code over in-memory resources, with paging,
and switches to make it slow or failing. It records every request so tests can check what was asked and
which bearer token came with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from support.loopback import free_port, serving


@dataclass
class Recorded:
    path: str
    query: str
    authorization: str | None
    request_id: str | None = None


@dataclass
class FhirState:
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 50
    delay_s: float = 0.0
    fail_status: dict[str, int] = field(default_factory=dict)  # resource type -> HTTP status to answer
    redirect_to: str | None = None  # answer every search with a redirect there
    requests: list[Recorded] = field(default_factory=list)

    def reset(self) -> None:
        self.resources = {}
        self.page_size = 50
        self.delay_s = 0.0
        self.fail_status = {}
        self.redirect_to = None
        self.requests = []

    def load(self, resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            self.resources.setdefault(resource["resourceType"], []).append(resource)


def _matches(resource: dict[str, Any], patient: str | None, codes: set[str] | None) -> bool:
    if patient is not None:
        subject = (resource.get("subject") or resource.get("patient") or {}).get("reference")
        if subject not in {f"Patient/{patient}", patient}:
            return False
    if codes is not None:
        found = {
            f"{c.get('system')}|{c.get('code')}" for c in (resource.get("code") or {}).get("coding") or ()
        } | {c.get("code") for c in (resource.get("code") or {}).get("coding") or ()}
        if not found & codes:
            return False
    return True


def _app(state: FhirState) -> Starlette:
    async def search(request: Request) -> JSONResponse:
        resource_type = request.path_params["type"]
        state.requests.append(
            Recorded(
                request.url.path,
                request.url.query,
                request.headers.get("authorization"),
                request.headers.get("x-request-id"),
            )
        )
        if state.delay_s:
            await asyncio.sleep(state.delay_s)
        if state.redirect_to:
            return RedirectResponse(state.redirect_to, status_code=302)
        if resource_type in state.fail_status:
            return JSONResponse(
                {"resourceType": "OperationOutcome", "issue": []}, state.fail_status[resource_type]
            )
        params = request.query_params
        codes = set(params["code"].split(",")) if "code" in params else None
        found = [
            r for r in state.resources.get(resource_type, []) if _matches(r, params.get("patient"), codes)
        ]
        offset = int(params.get("_offset", "0"))
        size = int(params.get("_count", state.page_size))
        page = found[offset : offset + size]
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(found)}
        if page:
            bundle["entry"] = [{"resource": r, "search": {"mode": "match"}} for r in page]
        if offset + size < len(found):
            query = "&".join(f"{k}={v}" for k, v in params.items() if k != "_offset")
            bundle["link"] = [
                {
                    "relation": "next",
                    "url": f"{request.base_url}fhir/{resource_type}?{query}&_offset={offset + size}",
                }
            ]
        return JSONResponse(bundle, media_type="application/fhir+json")

    return Starlette(routes=[Route("/fhir/{type}", search)])


@contextmanager
def running_fhir_server() -> Iterator[tuple[str, FhirState]]:
    """Start the server on a free loopback port; yield its base URL and its state."""
    state = FhirState()
    port = free_port()
    with serving(_app(state), port):
        yield f"http://127.0.0.1:{port}/fhir", state
