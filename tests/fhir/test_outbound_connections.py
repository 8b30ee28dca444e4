"""#18: the outbound client keeps its connections to a FHIR server across hook calls and search pages, and
speaks HTTP/2 where the server offers it (ALPN over TLS; never h2c in the clear), so one connection carries
every key of a call at once. The HTTP/2 connection is still pinned to the checked address and its
certificate still verified against the host name.

The server is hypercorn (support.hypercorn_server), which speaks HTTP/2 and h2c, serving the suite's FHIR
app; it records each request's HTTP version and client port (one port per TCP connection)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from cds_service.config import outbound_client
from cds_service.fhir import FetchError, FetchLimits, FhirFetcher, allowlist
from cds_service.fhir.pinned import PinnedTransport

from support.fhir_server import FhirState, fhir_app
from support.hypercorn_server import Arrivals, serving_hypercorn
from support.tls import Certificates, certificates, resolving

NAME, OTHER_NAME = "fhir.h2.test", "other.h2.test"  # both resolve to 127.0.0.1; the certificate names NAME
ADDRESS = "127.0.0.1"
TYPES = ["AllergyIntolerance", "Condition", "DiagnosticReport", "Encounter", "MedicationRequest"]
TYPES += ["MedicationStatement", "Observation", "Procedure", "ServiceRequest"]
PER_TYPE, PAGE = 12, 5  # 3 pages per key
SEARCHES = {t: f"{t}?patient=p1&_count={PAGE}" for t in TYPES}
CALLS = 4


def fhir_state() -> FhirState:
    state = FhirState()
    state.load(
        [
            {"resourceType": t, "id": f"{t.lower()}-{i}", "subject": {"reference": "Patient/p1"}}
            for t in TYPES
            for i in range(PER_TYPE)
        ]
    )
    return state


@dataclass
class Server:
    base: str
    arrivals: Arrivals


def fetcher_for(client: httpx.AsyncClient, base: str) -> FhirFetcher:
    return FhirFetcher(client, [base], FetchLimits(), require_https=base.startswith("https"))


async def fetch_calls(fetcher: FhirFetcher, base: str, calls: int = CALLS) -> None:
    """Run `calls` hook calls' worth of fetches (every key, every page) one after another, as a worker does;
    check that every key came back complete."""
    for _ in range(calls):
        results = await fetcher.fetch_many(base, SEARCHES, None)
        assert {key: len(bundle["entry"]) for key, bundle in results.items()} == dict.fromkeys(
            TYPES, PER_TYPE
        )


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", resolving({NAME: [ADDRESS], OTHER_NAME: [ADDRESS]}))


@pytest.fixture(scope="module")
def issued() -> Certificates:
    return certificates([NAME])


def _tls_server(issued: Certificates, folder, alpn: tuple[str, ...]) -> Iterator[Server]:
    with serving_hypercorn(fhir_app(fhir_state()), tls=issued.write(folder), alpn=alpn) as (port, arrivals):
        yield Server(f"https://{NAME}:{port}/fhir", arrivals)


@pytest.fixture
def h2_server(issued: Certificates, tmp_path, names) -> Iterator[Server]:
    yield from _tls_server(issued, tmp_path, ("h2", "http/1.1"))


@pytest.fixture
def http11_server(issued: Certificates, tmp_path, names) -> Iterator[Server]:
    yield from _tls_server(issued, tmp_path, ("http/1.1",))


@pytest.fixture
async def pinned(issued: Certificates) -> AsyncIterator[httpx.AsyncClient]:
    """The service's outbound client as config.outbound_client builds it, trusting the test CA."""
    transport = PinnedTransport(verify=issued.client_context())
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False, transport=transport) as client:
        yield client


async def test_connections_are_kept_across_calls_and_pages_in_the_clear(settings_factory):
    """Plain http (development): HTTP/1.1, one connection per key running at once, all kept for the next
    call. The server would speak h2c; the client never asks for it."""
    with serving_hypercorn(fhir_app(fhir_state())) as (port, arrivals):
        base = f"http://{ADDRESS}:{port}/fhir"
        async with outbound_client(settings_factory()) as client:
            fetcher = fetcher_for(client, base)
            await fetch_calls(fetcher, base, calls=1)
            first_call = arrivals.connections
            await fetch_calls(fetcher, base, calls=CALLS - 1)
    assert arrivals.versions == {"1.1"}
    assert len(arrivals.seen) == CALLS * (len(TYPES) * 3) + 1  # every page of every key; /metadata once
    assert first_call <= len(TYPES) + 1  # the keys and the version probe, at once
    assert arrivals.connections == first_call, "later calls and pages opened no connection"


async def test_a_server_offering_http2_gets_every_key_of_every_call_over_one_connection(h2_server, pinned):
    await fetch_calls(fetcher_for(pinned, h2_server.base), h2_server.base)
    assert h2_server.arrivals.versions == {"2"}
    assert h2_server.arrivals.connections == 1
    assert len(h2_server.arrivals.seen) == CALLS * (len(TYPES) * 3) + 1


async def test_a_tls_server_without_http2_still_works(http11_server, pinned):
    await fetch_calls(fetcher_for(pinned, http11_server.base), http11_server.base, calls=2)
    assert http11_server.arrivals.versions == {"1.1"}
    assert http11_server.arrivals.connections <= len(TYPES) + 1


async def test_the_http2_certificate_is_verified_against_the_host_name(h2_server, pinned):
    other = h2_server.base.replace(NAME, OTHER_NAME)  # same address, a name the certificate does not have
    fetcher = FhirFetcher(pinned, [other], FetchLimits(), require_https=True)
    with pytest.raises(FetchError, match="could not connect"):
        await fetcher.fetch(other, "Condition?patient=p1", None)
    assert h2_server.arrivals.seen == []


async def test_the_http2_connection_goes_only_to_a_checked_address(h2_server, pinned, monkeypatch):
    monkeypatch.setattr(allowlist, "_METADATA", allowlist._METADATA | {ipaddress.ip_address(ADDRESS)})
    fetcher = FhirFetcher(pinned, [h2_server.base], FetchLimits(), require_https=True)
    with pytest.raises(FetchError, match="address not allowed"):
        await fetcher.fetch(h2_server.base, "Condition?patient=p1", None)
    assert h2_server.arrivals.seen == []
