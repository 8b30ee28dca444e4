"""#18: the FHIR fallback asks for large pages by default. A search without `_count` gets the server's own
page size (HAPI's is 20), so a patient's 100 resources of one type came back in 5 sequential requests; at the
default settings they now come in one. A template's own `_count` is kept, 0 leaves the size to the server,
and a server that refuses the size the service added is asked again at its own page size.

Against the suite's FHIR server (support.fhir_server), set to HAPI's default page size, through the outbound
client and the limits the service builds from its settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from cds_service.config import Settings, fetch_limits, outbound_client
from cds_service.fhir import FetchError, FhirFetcher

from support.fhir_server import FHIR_JSON, FhirState, Recorded, fhir_app, serving

HAPI_DEFAULT_PAGE_SIZE = 20
RESOURCES = 100
REFUSED_ABOVE = 50  # the refusing server answers 400 to a larger _count

CONDITIONS = [
    {"resourceType": "Condition", "id": f"c{i}", "subject": {"reference": "Patient/p1"}}
    for i in range(RESOURCES)
]


def refusing_large_counts(app: ASGIApp, state: FhirState) -> ASGIApp:
    """A server that answers 400 to a `_count` above its maximum instead of capping it (most cap)."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope["query_string"].decode()
            if int(parse_qs(query).get("_count", ["0"])[-1]) > REFUSED_ABOVE:
                state.requests.append(Recorded(scope["method"], scope["path"], query))
                body = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid"}]}'
                headers = [(b"content-type", FHIR_JSON.encode())]
                await send({"type": "http.response.start", "status": 400, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


@dataclass
class Server:
    base: str
    state: FhirState

    @property
    def searches(self) -> list[str]:
        """The query of every Condition request (first pages and next pages), in order."""
        return [r.query for r in self.state.data_requests if r.path == "/fhir/Condition"]


def _server(wrap: Callable[[ASGIApp, FhirState], ASGIApp]) -> Iterator[Server]:
    state = FhirState(page_size=HAPI_DEFAULT_PAGE_SIZE)
    state.load(CONDITIONS)
    with serving(wrap(fhir_app(state), state)) as url:
        yield Server(f"{url}/fhir", state)


@pytest.fixture
def server() -> Iterator[Server]:
    yield from _server(lambda app, _: app)


@pytest.fixture
def refusing_server() -> Iterator[Server]:
    yield from _server(refusing_large_counts)


@pytest.fixture
async def fetch(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    """fetch(server, template, **settings): one search the way the service runs it with those settings."""
    clients: list[httpx.AsyncClient] = []

    async def run(server: Server, template: str, **overrides: Any) -> Any:
        settings = settings_factory(fhir_allowed_servers=[server.base], **overrides)
        client = outbound_client(settings)
        clients.append(client)
        fetcher = FhirFetcher(client, settings.fhir_allowed_servers, fetch_limits(settings))
        return await fetcher.fetch(server.base, template, None)

    yield run
    for client in clients:
        await client.aclose()


def ids(bundle: Any) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"]]


async def test_at_the_default_settings_100_resources_come_in_one_request(fetch, server):
    bundle = await fetch(server, "Condition?patient=p1")
    assert ids(bundle) == [c["id"] for c in CONDITIONS]
    assert server.searches == ["patient=p1&_count=200"]


async def test_a_template_that_sets_count_keeps_it(fetch, server):
    bundle = await fetch(server, "Condition?patient=p1&_count=40")
    assert len(ids(bundle)) == RESOURCES
    assert len(server.searches) == 3
    assert all(parse_qs(query)["_count"] == ["40"] for query in server.searches)


async def test_a_configured_page_size_is_asked_for(fetch, server):
    bundle = await fetch(server, "Condition?patient=p1", fhir_page_size=30)
    assert len(ids(bundle)) == RESOURCES
    assert server.searches[0] == "patient=p1&_count=30" and len(server.searches) == 4


async def test_page_size_0_leaves_the_page_size_to_the_server(fetch, server):
    bundle = await fetch(server, "Condition?patient=p1", fhir_page_size=0)
    assert len(ids(bundle)) == RESOURCES
    assert len(server.searches) == RESOURCES // HAPI_DEFAULT_PAGE_SIZE
    assert all("_count" not in parse_qs(query) for query in server.searches)


async def test_a_server_that_refuses_the_added_page_size_is_asked_at_its_own(fetch, refusing_server, caplog):
    with caplog.at_level(logging.WARNING, logger="cds_service.fhir"):
        bundle = await fetch(refusing_server, "Condition?patient=p1")
    assert ids(bundle) == [c["id"] for c in CONDITIONS]
    assert refusing_server.searches[:2] == ["patient=p1&_count=200", "patient=p1"]
    assert len(refusing_server.searches) == 1 + RESOURCES // HAPI_DEFAULT_PAGE_SIZE
    assert "refused _count=200" in caplog.text and "p1" not in caplog.text


async def test_a_refused_count_the_template_set_is_not_retried(fetch, refusing_server):
    """The template's `_count` is the rule author's: a server refusing it is an error, as before."""
    with pytest.raises(FetchError, match="FHIR server answered 400"):
        await fetch(refusing_server, "Condition?patient=p1&_count=60")
    assert refusing_server.searches == ["patient=p1&_count=60"]


def test_the_default_page_size_is_200():
    assert Settings().fhir_page_size == 200 and fetch_limits(Settings()).page_size == 200
