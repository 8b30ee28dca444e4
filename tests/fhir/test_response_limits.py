"""A hostile allowlisted FHIR server cannot take a worker's memory (#17, 4): the attack sent 60 MB answers
(a worker reached 1.34 GB) and 97 KB of gzip that inflated to 100 MB. Answers are read as they arrive,
inflated piece by piece within a per-answer and a per-call byte limit, and a key past either fails as too
large, which a hook call answers with 412 naming the key."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest

from cds_service.fhir import FetchError, FetchLimits, FhirFetcher
from cds_service.fhir.body import ByteBudget, read_bounded

from support.fhir_server import FhirState, padded_bundle, running_fhir_server
from support.hooks import hook_request, with_server

MB = 1_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FhirState]]:
    with running_fhir_server() as (base, state):
        yield base, state


@pytest.fixture
def hostile(server: tuple[str, FhirState]) -> tuple[str, FhirState]:
    server[1].reset()
    return server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def _peak_while(coroutine: object) -> tuple[object, int]:
    """What awaiting `coroutine` gave (or raised), and the most memory Python held meanwhile."""
    tracemalloc.start()
    try:
        try:
            result: object = await coroutine  # type: ignore[misc]
        except FetchError as error:
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_a_gzip_bomb_is_inflated_only_as_far_as_the_limit(hostile, http) -> None:
    base, state = hostile
    state.oversized = {"Condition": (100 * MB, "gzip")}
    padded_bundle(100 * MB, "gzip")  # built before measuring: the server's cost is not the client's
    fetcher = FhirFetcher(http, [base], FetchLimits(max_response_bytes=5 * MB))
    failed, peak = await _peak_while(fetcher.fetch(base, "Condition?patient=p1", None))
    assert isinstance(failed, FetchError) and failed.kind == "too-large"
    assert "5,000,000 bytes one FHIR answer" in failed.reason
    assert peak < 30 * MB, f"the client held {peak / MB:.0f} MB for a 5 MB limit"


async def test_a_large_plain_answer_is_not_read_past_the_limit(hostile, http) -> None:
    base, state = hostile
    state.oversized = {"Condition": (60 * MB, "identity")}
    padded_bundle(60 * MB, "identity")  # built before measuring (the same arguments: cached)
    fetcher = FhirFetcher(http, [base], FetchLimits(max_response_bytes=5 * MB))
    failed, peak = await _peak_while(fetcher.fetch(base, "Condition?patient=p1", None))
    assert isinstance(failed, FetchError) and failed.kind == "too-large"
    assert peak < 30 * MB, f"the client held {peak / MB:.0f} MB for a 5 MB limit"


async def test_a_compressed_answer_within_the_limit_is_inflated_and_read(hostile, http) -> None:
    base, state = hostile
    state.oversized = {"Condition": (2 * MB, "gzip")}
    fetcher = FhirFetcher(http, [base], FetchLimits(max_response_bytes=5 * MB))
    bundle = await fetcher.fetch(base, "Condition?patient=p1", None)
    assert bundle is not None and bundle["resourceType"] == "Bundle"
    assert len(bundle["entry"]) == len(orjson.loads(padded_bundle(2 * MB))["entry"])


async def test_the_keys_of_one_call_share_one_byte_budget(hostile, http) -> None:
    base, state = hostile
    state.oversized = {"Condition": (4 * MB, "identity"), "Observation": (4 * MB, "identity")}
    fetcher = FhirFetcher(http, [base], FetchLimits(max_response_bytes=5 * MB, max_call_bytes=6 * MB))
    found = await fetcher.fetch_many(
        base, {"conditions": "Condition?patient=p1", "observations": "Observation?patient=p1"}, None
    )
    failures = [value for value in found.values() if isinstance(value, FetchError)]
    # read at the same time, both may be cut short; neither answer alone is over its own limit
    assert failures and all("6,000,000 bytes one call may read" in f.reason for f in failures)


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_an_encoding_that_was_not_asked_for_is_refused() -> None:
    with pytest.raises(FetchError, match="encoded as 'br'"):
        await read_bounded(_chunks(b"\x00\x01"), "br", MB)


async def test_a_corrupt_gzip_body_is_invalid_not_a_crash() -> None:
    with pytest.raises(FetchError, match="not valid gzip") as raised:
        await read_bounded(_chunks(b"\x1f\x8b\x08\x00garbage-garbage"), "gzip", MB)
    assert raised.value.kind == "invalid"


async def test_the_budget_counts_what_was_read() -> None:
    budget = ByteBudget(10)
    assert await read_bounded(_chunks(b"abc", b"def"), "identity", 100, budget) == b"abcdef"
    assert budget.remaining == 4
    with pytest.raises(FetchError, match="the 10 bytes one call may read"):
        await read_bounded(_chunks(b"abcdef"), "", 100, budget)


def test_a_hook_call_whose_fhir_server_sends_a_bomb_is_412_naming_the_key(fhir, client_factory) -> None:
    base, state = fhir
    state.oversized = {"Observation": (100 * MB, "gzip")}
    client = client_factory(fhir_allowed_servers=[base], fhir_max_response_bytes=5 * MB)
    body = with_server(hook_request("order-sign"), base)
    del body["prefetch"]["observations"]
    response = client.post("/cds-services/postfusion-pain-order-sign", json=body)
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.observations"]
    assert "bytes one FHIR answer may have" in issue["diagnostics"]
