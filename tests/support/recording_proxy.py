"""A loopback reverse proxy in front of a real FHIR server: it records what reaches it (path, query and the
Authorization header) and can be told to fail, so tests can see the bearer token arrive and the service
cope with a broken server. Absolute URLs in responses (paging links) are rewritten to the proxy's base."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from support.fhir_server import Recorded, serving


@dataclass
class ProxyState:
    upstream: str
    base: str = ""
    fail_status: int | None = None
    requests: list[Recorded] = field(default_factory=list)


def _app(state: ProxyState) -> Starlette:
    async def forward(request: Request) -> Response:
        state.requests.append(
            Recorded(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                authorization=request.headers.get("authorization"),
            )
        )
        if state.fail_status is not None:
            return Response(b'{"resourceType":"OperationOutcome","issue":[]}', state.fail_status)
        path = request.url.path.removeprefix("/fhir")
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:  # closed with each answer
            upstream = await client.get(f"{state.upstream}{path}", params=request.query_params)
        body = upstream.content.replace(state.upstream.encode(), state.base.encode())
        return Response(body, upstream.status_code, media_type=upstream.headers.get("content-type"))

    # HAPI's paging links go to the base itself: /fhir?_getpages=...
    return Starlette(routes=[Route("/fhir", forward), Route("/fhir/{path:path}", forward)])


@contextmanager
def running_proxy(upstream: str) -> Iterator[ProxyState]:
    state = ProxyState(upstream=upstream.rstrip("/"))
    with serving(_app(state)) as url:
        state.base = f"{url}/fhir"
        yield state
