"""Outbound FHIR fetching against a real loopback FHIR server (support.fhir_server) and a trap listener
that proves refused URLs are never contacted at all."""

import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from cds_service.fhir import FetchError, FetchLimits, FhirFetcher, is_allowed

from support.fhir_server import PATIENT, ConnectionTrap, FhirState, Recorded, running_fhir_server

TOKEN = "eyJhbGciOiJSUzM4NCJ9.secret-token.sig"

_CONDITION_CODES = [
    ("279039007", "Low back pain"),
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder"),
    ("69896004", "Rheumatoid arthritis"),
    ("195967001", "Asthma"),
]

CONDITIONS = [
    {
        "resourceType": "Condition",
        "id": f"c{i}",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": f"202{i}-01-15",
    }
    for i, (code, display) in enumerate(_CONDITION_CODES)
]


@dataclass
class Loopback:
    """Handles for tests: the FHIR server's base and state, and the trap (the foreign base)."""

    base: str
    state: FhirState
    trap: ConnectionTrap

    @property
    def seen(self) -> list[Recorded]:
        """The requests the FHIR server saw."""
        return self.state.requests

    @property
    def trap_base(self) -> str:
        return self.trap.base

    def reset(self) -> None:
        """The patient p1 with five conditions, a cookie patient and a deleted one; nothing seen yet."""
        self.state.reset()
        self.state.foreign_base = self.trap.base
        self.state.load([PATIENT, {**PATIENT, "id": "cookie"}, *CONDITIONS])
        self.state.gone = {"Patient/gone"}
        self.state.page_size = 100
        self.trap.connections = 0


@pytest.fixture(scope="module")
def loopback_session() -> Iterator[Loopback]:
    with ConnectionTrap() as trap, running_fhir_server() as (base, state):
        yield Loopback(base, state, trap)


@pytest.fixture
def loopback(loopback_session: Loopback) -> Loopback:
    loopback_session.reset()
    return loopback_session


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A fresh httpx client per test (this module's `client`; the others' is the app's TestClient)."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def fetcher(client: httpx.AsyncClient, loopback: Loopback, **limits: float) -> FhirFetcher:
    return FhirFetcher(client, [loopback.base], FetchLimits(**limits))


@pytest.mark.parametrize(
    ("url", "allowed", "expected"),
    [
        ("http://127.0.0.1:8080/fhir", ["http://127.0.0.1:8080/fhir"], True),
        ("http://127.0.0.1:8080/fhir/", ["http://127.0.0.1:8080/fhir"], True),
        ("http://127.0.0.1:8080/fhir", ["http://127.0.0.1:8080/fhir/"], True),
        ("http://127.0.0.1:8080/fhir/Patient/1?x=1", ["http://127.0.0.1:8080/fhir"], True),
        ("HTTPS://EHR.Example.ORG/fhir/Patient", ["https://ehr.example.org/fhir"], True),
        ("https://ehr.example.org:443/fhir", ["https://ehr.example.org/fhir"], True),
        ("http://ehr.example.org/fhir", ["http://ehr.example.org:80/fhir"], True),
        ("https://ehr.example.org/anything", ["https://ehr.example.org"], True),
        ("http://[::1]:8080/fhir/Patient", ["http://[::1]:8080/fhir"], True),
        ("https://ehr.example.org/fhir", ["https://other.example.org", "https://ehr.example.org/fhir"], True),
        ("https://ehr.example.org:8443/fhir", ["https://ehr.example.org/fhir"], False),
        ("http://ehr.example.org/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhirx", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/FHIR", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org.evil.com/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://user@ehr.example.org/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://user:pw@ehr.example.org/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhir", ["https://user@ehr.example.org/fhir"], False),
        ("https://ehr.example.org\\@evil.com/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhir/../admin", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhir/%2e%2e/admin", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhir/..%2Fadmin", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org:99999/fhir", ["https://ehr.example.org/fhir"], False),
        ("ftp://ehr.example.org/fhir", ["ftp://ehr.example.org/fhir"], False),
        ("file:///etc/passwd", ["file:///etc"], False),
        ("//ehr.example.org/fhir", ["https://ehr.example.org/fhir"], False),
        ("https://ehr.example.org/fhir", [], False),
        ("", ["https://ehr.example.org/fhir"], False),
    ],
)
def test_is_allowed(url: str, allowed: list[str], expected: bool) -> None:
    assert is_allowed(url, allowed) is expected


async def test_read_forwards_bearer_token_and_accept(client: httpx.AsyncClient, loopback: Loopback) -> None:
    assert await fetcher(client, loopback).fetch(loopback.base, "Patient/p1", TOKEN) == PATIENT
    [seen] = loopback.seen
    assert (seen.path, seen.authorization, seen.accept) == (
        "/fhir/Patient/p1",
        f"Bearer {TOKEN}",
        "application/fhir+json",
    )


async def test_read_without_token_sends_no_authorization(
    client: httpx.AsyncClient, loopback: Loopback
) -> None:
    assert await fetcher(client, loopback).fetch(loopback.base, "Patient/p1", None) == PATIENT
    assert [s.authorization for s in loopback.seen] == [None]


async def test_join_uses_exactly_one_slash(client: httpx.AsyncClient, loopback: Loopback) -> None:
    assert await fetcher(client, loopback).fetch(loopback.base + "/", "/Patient/p1", None) == PATIENT
    assert loopback.seen[0].path == "/fhir/Patient/p1"


@pytest.mark.parametrize("pid", ["missing", "gone"])
async def test_read_of_missing_resource_is_none(
    client: httpx.AsyncClient, loopback: Loopback, pid: str
) -> None:
    assert await fetcher(client, loopback).fetch(loopback.base, f"Patient/{pid}", TOKEN) is None


async def test_search_pages_are_followed_and_merged(client: httpx.AsyncClient, loopback: Loopback) -> None:
    bundle = await fetcher(client, loopback).fetch(loopback.base, "Condition?patient=p1&_count=2", TOKEN)
    assert bundle is not None
    assert set(bundle) == {"resourceType", "type", "total", "entry"}
    assert (bundle["resourceType"], bundle["type"], bundle["total"]) == ("Bundle", "searchset", 5)
    assert [e["resource"] for e in bundle["entry"]] == CONDITIONS
    assert [s.query for s in loopback.seen] == [
        "patient=p1&_count=2",
        "patient=p1&_count=2&_offset=2",
        "patient=p1&_count=2&_offset=4",
    ]
    assert {s.authorization for s in loopback.seen} == {f"Bearer {TOKEN}"}


async def test_relative_next_links_resolve_against_fhir_server(
    client: httpx.AsyncClient, loopback: Loopback
) -> None:
    bundle = await fetcher(client, loopback).fetch(
        loopback.base, "Condition?patient=p1&_count=3&_relative=1", None
    )
    assert bundle is not None
    assert len(bundle["entry"]) == 5
    assert [s.path for s in loopback.seen] == ["/fhir/Condition", "/fhir/Condition"]


async def test_single_page_search_is_returned_as_served(
    client: httpx.AsyncClient, loopback: Loopback
) -> None:
    bundle = await fetcher(client, loopback).fetch(loopback.base, "Condition?patient=p1", TOKEN)
    assert bundle is not None
    assert len(bundle["entry"]) == 5
    assert [link["relation"] for link in bundle["link"]] == ["self"]


async def test_empty_search_is_a_bundle_without_entries(
    client: httpx.AsyncClient, loopback: Loopback
) -> None:
    bundle = await fetcher(client, loopback).fetch(loopback.base, "Condition?patient=nobody", TOKEN)
    assert bundle is not None
    assert (bundle["resourceType"], bundle["total"], bundle.get("entry", [])) == ("Bundle", 0, [])


async def test_exactly_max_pages_is_allowed(client: httpx.AsyncClient, loopback: Loopback) -> None:
    bundle = await fetcher(client, loopback, max_pages=3).fetch(
        loopback.base, "Condition?patient=p1&_count=2", None
    )
    assert bundle is not None
    assert len(bundle["entry"]) == 5


async def test_max_pages_is_enforced(client: httpx.AsyncClient, loopback: Loopback) -> None:
    with pytest.raises(FetchError, match=r"^too many pages \(>3\)$"):
        await fetcher(client, loopback, max_pages=3).fetch(loopback.base, "endless?page=0", TOKEN)
    assert len(loopback.seen) == 3


async def test_max_resources_is_enforced(client: httpx.AsyncClient, loopback: Loopback) -> None:
    with pytest.raises(FetchError, match=r"too many resources \(>3\)"):
        await fetcher(client, loopback, max_resources=3).fetch(
            loopback.base, "Condition?patient=p1&_count=2", None
        )
    assert len(loopback.seen) == 2


async def test_paging_loop_is_refused(client: httpx.AsyncClient, loopback: Loopback) -> None:
    with pytest.raises(FetchError, match="paging loop"):
        await fetcher(client, loopback).fetch(loopback.base, "loop?x=1", None)


@pytest.mark.parametrize(
    ("relative_url", "reason", "status"),
    [
        ("status/500", "FHIR server answered 500", 500),
        ("status/401", "FHIR server answered 401", 401),
        ("status/403?x=1", "FHIR server answered 403", 403),
        ("Unknown?patient=p1", "FHIR server answered 404", 404),
        ("oo", "FHIR server answered with an OperationOutcome", 200),
        ("nonjson", "FHIR server sent a body that is not JSON", 200),
        ("notfhir", "FHIR server sent JSON that is not a FHIR resource", 200),
        ("Patient/p1?x=1", "search did not return a Bundle", None),
    ],
)
async def test_failures_raise_fetch_error(
    client: httpx.AsyncClient, loopback: Loopback, relative_url: str, reason: str, status: int | None
) -> None:
    with pytest.raises(FetchError) as caught:
        await fetcher(client, loopback).fetch(loopback.base, relative_url, TOKEN)
    assert (caught.value.reason, caught.value.status, str(caught.value)) == (reason, status, reason)


async def test_redirect_is_not_followed(client: httpx.AsyncClient, loopback: Loopback) -> None:
    with pytest.raises(FetchError, match="redirects are not followed") as caught:
        await fetcher(client, loopback).fetch(loopback.base, "redirect", TOKEN)
    assert caught.value.status == 302
    assert loopback.trap.connections == 0


async def test_request_timeout(client: httpx.AsyncClient, loopback: Loopback) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"^timed out after 0.3 s$") as caught:
        await fetcher(client, loopback, timeout_s=0.3).fetch(loopback.base, "slow/1", TOKEN)
    assert time.monotonic() - started < 0.9
    assert caught.value.status is None


async def test_total_timeout_over_all_pages(client: httpx.AsyncClient, loopback: Loopback) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"^total time limit of 0.5 s exceeded$"):
        await fetcher(client, loopback, total_timeout_s=0.5).fetch(loopback.base, "endless?delay=0.15", None)
    assert time.monotonic() - started < 1.0
    assert len(loopback.seen) >= 3


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        closed_base = f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"
    with pytest.raises(FetchError, match="could not connect"):
        await FhirFetcher(client, [closed_base]).fetch(closed_base, "Patient/p1", TOKEN)


async def test_server_not_allowlisted_is_never_contacted(
    client: httpx.AsyncClient, loopback: Loopback
) -> None:
    with pytest.raises(FetchError, match=r"^server not allowlisted$") as caught:
        await fetcher(client, loopback).fetch(loopback.trap_base, "Patient/p1", TOKEN)
    assert caught.value.status is None
    with pytest.raises(FetchError, match="server not allowlisted"):
        await FhirFetcher(client, []).fetch(loopback.base, "Patient/p1", TOKEN)
    assert loopback.trap.connections == 0
    assert loopback.seen == []


async def test_relative_url_cannot_leave_the_base(client: httpx.AsyncClient, loopback: Loopback) -> None:
    with pytest.raises(FetchError, match="leaves fhirServer"):
        await fetcher(client, loopback).fetch(loopback.base, "../other/Patient/p1", TOKEN)
    assert loopback.seen == []


async def test_fhir_server_with_query_is_refused(client: httpx.AsyncClient, loopback: Loopback) -> None:
    with pytest.raises(FetchError, match="query or fragment"):
        await FhirFetcher(client, [loopback.base]).fetch(loopback.base + "?x=1", "Patient/p1", TOKEN)
    assert loopback.seen == []


@pytest.mark.parametrize("token", ["", "abc\r\nX-Evil: 1", "has space"])
async def test_malformed_token_is_refused(client: httpx.AsyncClient, loopback: Loopback, token: str) -> None:
    with pytest.raises(FetchError, match="invalid access token"):
        await fetcher(client, loopback).fetch(loopback.base, "Patient/p1", token)
    assert loopback.seen == []


@pytest.mark.parametrize("where", ["host", "path"])
async def test_next_link_outside_fhir_server_is_refused(
    client: httpx.AsyncClient, loopback: Loopback, where: str
) -> None:
    with pytest.raises(FetchError, match="next link points outside fhirServer"):
        await fetcher(client, loopback).fetch(loopback.base, f"badnext?where={where}", TOKEN)
    assert loopback.trap.connections == 0
    assert [s.path for s in loopback.seen] == ["/fhir/badnext"]


async def test_cookies_are_not_carried_between_requests(
    client: httpx.AsyncClient, loopback: Loopback
) -> None:
    fhir = fetcher(client, loopback)
    loopback.state.cookies = {"session": "user-a-session"}  # the answer to user a sets a cookie
    await fhir.fetch(loopback.base, "Patient/cookie", "token-user-a")
    loopback.state.cookies = {}
    await fhir.fetch(loopback.base, "Patient/p1", "token-user-b")
    assert [s.cookie for s in loopback.seen] == [None, None]


async def test_fetch_many_runs_keys_concurrently(client: httpx.AsyncClient, loopback: Loopback) -> None:
    requests = {f"slow{i}": "slow/0.4" for i in range(4)}
    started = time.monotonic()
    results = await fetcher(client, loopback).fetch_many(loopback.base, requests, TOKEN)
    elapsed = time.monotonic() - started
    assert results == dict.fromkeys(requests, PATIENT)
    assert elapsed < 1.0, f"took {elapsed:.2f} s; sequential would be 1.6 s"


async def test_fetch_many_returns_failures_per_key(client: httpx.AsyncClient, loopback: Loopback) -> None:
    results = await fetcher(client, loopback).fetch_many(
        loopback.base,
        {
            "patient": "Patient/p1",
            "missing": "Patient/nope",
            "broken": "status/500",
            "conditions": "Condition?patient=p1",
        },
        TOKEN,
    )
    assert results["patient"] == PATIENT
    assert results["missing"] is None
    assert isinstance(results["broken"], FetchError)
    assert results["broken"].status == 500
    conditions = results["conditions"]
    assert isinstance(conditions, dict)
    assert conditions["total"] == 5


async def test_fetch_many_with_server_not_allowlisted(client: httpx.AsyncClient, loopback: Loopback) -> None:
    results = await fetcher(client, loopback).fetch_many(loopback.trap_base, {"a": "Patient/p1"}, TOKEN)
    assert isinstance(results["a"], FetchError)
    assert results["a"].reason == "server not allowlisted"
    assert loopback.trap.connections == 0


async def prefetched_first_page(client: httpx.AsyncClient, loopback: Loopback) -> dict:
    """What a CDS client would put in `prefetch` when it paginates: page 1 with a next link."""
    response = await client.get(f"{loopback.base}/Condition?patient=p1&_count=2")
    loopback.reset()
    return response.json()


async def test_complete_follows_a_prefetched_bundle(client: httpx.AsyncClient, loopback: Loopback) -> None:
    first = await prefetched_first_page(client, loopback)
    bundle = await fetcher(client, loopback).complete(loopback.base, first, TOKEN)
    assert [e["resource"] for e in bundle["entry"]] == CONDITIONS
    assert "link" not in bundle
    assert bundle["total"] == 5
    assert [s.query for s in loopback.seen] == [
        "patient=p1&_count=2&_offset=2",
        "patient=p1&_count=2&_offset=4",
    ]
    assert {s.authorization for s in loopback.seen} == {f"Bearer {TOKEN}"}


async def test_complete_counts_the_given_page(client: httpx.AsyncClient, loopback: Loopback) -> None:
    first = await prefetched_first_page(client, loopback)
    with pytest.raises(FetchError, match=r"too many pages \(>2\)"):
        await fetcher(client, loopback, max_pages=2).complete(loopback.base, first, TOKEN)
    assert len(loopback.seen) == 1


async def test_complete_leaves_bundles_without_next_alone(
    client: httpx.AsyncClient, loopback: Loopback
) -> None:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": PATIENT}]}
    fhir = FhirFetcher(client, [])
    assert await fhir.complete(loopback.trap_base, bundle, TOKEN) is bundle
    assert await fhir.complete(loopback.base, PATIENT, TOKEN) is PATIENT
    assert loopback.seen == []


async def test_complete_refuses_foreign_servers_and_links(
    client: httpx.AsyncClient, loopback: Loopback
) -> None:
    first = await prefetched_first_page(client, loopback)
    with pytest.raises(FetchError, match="server not allowlisted"):
        await FhirFetcher(client, [loopback.trap_base]).complete(loopback.base, first, TOKEN)
    foreign = {**first, "link": [{"relation": "next", "url": f"{loopback.trap_base}/Condition?page=2"}]}
    with pytest.raises(FetchError, match="next link points outside fhirServer"):
        await fetcher(client, loopback).complete(loopback.base, foreign, TOKEN)
    assert loopback.trap.connections == 0
    assert loopback.seen == []


async def test_logs_and_reasons_carry_no_token_or_query(
    client: httpx.AsyncClient, loopback: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cds_service.fhir")
    results = await fetcher(client, loopback).fetch_many(
        loopback.base,
        {"conditions": "Condition?patient=p1&_count=2", "broken": "status/500?patient=p1"},
        TOKEN,
    )
    assert "key=conditions" in caplog.text
    assert "key=broken" in caplog.text
    for text in (caplog.text, str(results["broken"])):
        assert TOKEN not in text
        assert "secret" not in text
        assert "p1" not in text
        assert "127.0.0.1" not in text
