"""A FHIR server that is not R4 gets a clear answer: the fallback fetch reads its version from `/metadata`
(or the `fhirVersion` of its media type), refuses every key naming the version found, and the hook call
answers 412 instead of a silent `{"cards": []}`. The version is read beside the searches and cached per
server, so the hot path does not pay a /metadata request per call. Against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cds_service.fhir import FetchError, FhirFetcher
from cds_service.fhir.version import VersionCache, WrongFhirVersion, is_r4, media_type_version

from support.fhir_server import ConnectionTrap, serving
from support.hooks import SERVICES, hook_request

SEARCHES = {"conditions": "Condition?patient=p1", "procedures": "Procedure?patient=p1"}
FHIR_JSON = "application/fhir+json"


@dataclass
class Versioned:
    """What the server says about itself: `metadata` is its CapabilityStatement (None: /metadata 404s)."""

    metadata: dict | None = field(default_factory=lambda: capability("4.0.1"))
    metadata_status: int = 200
    media_type: str = FHIR_JSON  # of the search answers
    meet: bool = False  # /metadata and the first search each wait for the other (proof they run together)
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.metadata_arrived = asyncio.Event()
        self.search_arrived = asyncio.Event()


def capability(version: str | None, kind: str = "CapabilityStatement") -> dict:
    found = {"resourceType": kind, "status": "active", "kind": "instance", "format": ["json"]}
    return found if version is None else {**found, "fhirVersion": version}


def versioned_app(server: Versioned) -> Starlette:
    async def metadata(request: Request) -> Response:
        server.paths.append(request.url.path)
        server.metadata_arrived.set()
        if server.meet:
            await asyncio.wait_for(server.search_arrived.wait(), 5)
        if server.metadata_status != 200:
            return PlainTextResponse("down", status_code=server.metadata_status)
        if server.metadata is None:
            return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, status_code=404)
        return JSONResponse(server.metadata, media_type=FHIR_JSON)

    async def search(request: Request) -> Response:
        server.paths.append(request.url.path)
        server.search_arrived.set()
        if server.meet:
            await asyncio.wait_for(server.metadata_arrived.wait(), 5)
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": 0}
        return JSONResponse(bundle, media_type=server.media_type)

    return Starlette(routes=[Route("/fhir/metadata", metadata), Route("/fhir/{kind}", search)])


@pytest.fixture
def versioned() -> Iterator[tuple[str, Versioned]]:
    server = Versioned()
    with serving(versioned_app(server)) as root:
        yield f"{root}/fhir", server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def refusals(results: dict) -> set[str]:
    assert set(results) == set(SEARCHES)
    return {result.reason for result in results.values() if isinstance(result, WrongFhirVersion)}


@pytest.mark.parametrize(
    ("metadata", "version"),
    [
        (capability("3.0.2"), "3.0.2"),  # STU3
        (capability("1.0.2", "Conformance"), "1.0.2"),  # DSTU2 calls it Conformance
        (capability("5.0.0"), "5.0.0"),  # R5
        (capability("4.3.0"), "4.3.0"),  # R4B is not R4
        (capability("<b>4</b>"), "an unrecognised version"),  # what a server says is not echoed blindly
    ],
)
async def test_a_server_that_is_not_r4_fails_every_key_naming_its_version(
    versioned, client, metadata: dict, version: str
):
    base, server = versioned
    server.metadata = metadata
    results = await FhirFetcher(client, [base]).fetch_many(base, SEARCHES, None)
    assert refusals(results) == {
        f"the FHIR server reports FHIR version {version}; this service needs FHIR R4 (4.0.x)"
    }
    assert all(isinstance(r, FetchError) and r.kind == "version" for r in results.values())


@pytest.mark.parametrize("version", ["4.0.1", "4.0.0", "4.0"])
async def test_an_r4_server_is_served(versioned, client, version: str):
    base, server = versioned
    server.metadata = capability(version)
    results = await FhirFetcher(client, [base]).fetch_many(base, SEARCHES, None)
    assert all(result["resourceType"] == "Bundle" for result in results.values())


@pytest.mark.parametrize(
    "setup",
    [
        {"metadata_status": 500},
        {"metadata_status": 401},
        {"metadata": None},  # 404
        {"metadata": capability(None)},  # no fhirVersion
        {"metadata": {"resourceType": "Patient", "id": "p1"}},  # not a CapabilityStatement
    ],
    ids=["500", "401", "404", "no-fhirVersion", "not-a-capability-statement"],
)
async def test_a_server_that_does_not_say_is_served_as_before(versioned, client, setup: dict):
    base, server = versioned
    for name, value in setup.items():
        setattr(server, name, value)
    results = await FhirFetcher(client, [base]).fetch_many(base, SEARCHES, None)
    assert all(result["resourceType"] == "Bundle" for result in results.values())


async def test_the_fhir_version_of_the_media_type_counts_too(versioned, client):
    base, server = versioned
    server.metadata = capability(None)
    server.media_type = f"{FHIR_JSON}; fhirVersion=3.0"
    results = await FhirFetcher(client, [base]).fetch_many(base, SEARCHES, None)
    assert refusals(results) == {
        "the FHIR server reports FHIR version 3.0; this service needs FHIR R4 (4.0.x)"
    }


async def test_the_version_is_read_once_per_server_not_per_call(versioned, client):
    base, server = versioned
    fetcher = FhirFetcher(client, [base])
    for _ in range(3):
        await fetcher.fetch_many(base, SEARCHES, None)
    assert server.paths.count("/fhir/metadata") == 1
    assert server.paths.count("/fhir/Condition") == 3
    # the fetcher restricted to a client's own servers shares what it knows
    await fetcher.for_servers([base]).fetch_many(base, SEARCHES, None)
    assert server.paths.count("/fhir/metadata") == 1


async def test_the_version_is_read_beside_the_searches_not_before_them(versioned, client):
    base, server = versioned
    server.meet = True  # /metadata answers only once a search has arrived, and the other way round
    started = time.monotonic()
    results = await FhirFetcher(client, [base]).fetch_many(base, SEARCHES, None)
    assert time.monotonic() - started < 4  # one after the other, either would wait 5 s and fail
    assert all(result["resourceType"] == "Bundle" for result in results.values())


async def test_a_server_off_the_allowlist_is_not_asked_its_version(client):
    with ConnectionTrap() as trap:
        results = await FhirFetcher(client, ["https://ehr.example.org/fhir"]).fetch_many(
            trap.base, SEARCHES, None
        )
        assert trap.connections == 0
    assert {r.reason for r in results.values()} == {"server not allowlisted"}


async def test_the_cache_forgets_after_its_time_and_keeps_few_servers():
    now = [0.0]
    cache = VersionCache(max_entries=2, ttl_s=60, clock=lambda: now[0])
    reads: list[str] = []

    def reader(base: str, version: str):
        async def read() -> str | None:
            reads.append(base)
            return version

        return read

    assert await cache.version("https://a.example/fhir", reader("a", "4.0.1")) == "4.0.1"
    assert await cache.version("https://A.example:443/fhir/", reader("a", "x")) == "4.0.1"  # same base
    now[0] = 61
    assert await cache.version("https://a.example/fhir", reader("a", "3.0.2")) == "3.0.2"  # read again
    await cache.version("https://b.example/fhir", reader("b", "4.0.1"))
    await cache.version("https://c.example/fhir", reader("c", "4.0.1"))  # a, read longest ago, goes
    await cache.version("https://b.example/fhir", reader("b", "4.0.1"))
    await cache.version("https://a.example/fhir", reader("a", "4.0.1"))
    assert reads == ["a", "a", "b", "c", "a"]


@pytest.mark.parametrize(
    ("text", "r4"),
    [("4.0.1", True), ("4.0", True), ("4.0.0-cibuild", True), ("4.01", False), ("3.0.2", False)],
)
def test_what_counts_as_r4(text: str, r4: bool):
    assert is_r4(text) is r4


def test_the_media_type_parameter():
    assert media_type_version('application/fhir+json;charset=utf-8; fhirVersion="3.0"') == "3.0"
    assert media_type_version("application/fhir+json;charset=utf-8") is None
    assert media_type_version(None) is None


def test_a_hook_call_against_an_stu3_server_answers_412_naming_the_version(versioned, client_factory):
    base, server = versioned
    server.metadata = capability("3.0.2")
    service = client_factory(fhir_allowed_servers=[base])
    body = hook_request("patient-view")
    body["fhirServer"] = base
    del body["prefetch"]
    response = service.post(f"/cds-services/{SERVICES['patient-view']}", json=body)
    assert response.status_code == 412, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    diagnostics = {issue["diagnostics"] for issue in outcome["issue"]}
    assert diagnostics and all("FHIR version 3.0.2" in text and "R4 (4.0.x)" in text for text in diagnostics)
    assert server.paths.count("/fhir/metadata") == 1
