"""The FHIR fallback against a real HAPI FHIR server: without prefetch, or with part of it, the service
fetches the rest itself and must give exactly the cards the full-prefetch path gives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from cds_service.cli.cases import Case, describe, expected_of, matches, request_for
from cds_service.config import Settings
from cds_service.web.app import create_app

from support.fhir_server import free_port
from support.hooks import SERVICES, T0
from support.recording_proxy import ProxyState, running_proxy
from support.requests import discovery_templates, prefetch_for

TOKEN = "hapi-integration-token"


def app_client(tmp_path_factory: pytest.TempPathFactory, **settings: Any) -> TestClient:
    database = tmp_path_factory.mktemp("store") / "feedback.sqlite3"
    values = {
        "database_url": f"sqlite+aiosqlite:///{database}",
        "reload": False,
        "fhir_allow_http": True,
        "auth": "off",
        # every case's calls run one after another on one app: order-sign would rightly not repeat what
        # order-select just showed (V2-30, tested in tests/hooks/test_quiet_cards.py), so it is off here
        "quiet_cards": False,
    }
    values.update(settings)
    return TestClient(create_app(Settings(**values), clock=lambda: T0), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def service(loaded: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(
        tmp_path_factory, fhir_allowed_servers=[loaded], fhir_timeout_s=30, fhir_total_timeout_s=60
    ) as client:
        yield client


def calls(cases: list[Case]) -> list[tuple[Case, dict]]:
    return [(case, call) for case in cases for call in case.calls]


def post(client: TestClient, body: dict) -> httpx.Response:
    return client.post(f"/cds-services/{SERVICES[body['hook']]}", json=body)


def as_case_dict(case: Case) -> dict:
    return {"id": case.id, "bundle": {"entry": [{"resource": r} for r in case.resources]}}


def test_hapi_serves_fhir_r4(hapi: str):
    metadata = httpx.get(f"{hapi}/metadata", timeout=60).json()
    assert metadata["resourceType"] == "CapabilityStatement" and metadata["fhirVersion"].startswith("4.0")


def test_without_prefetch_every_case_gets_the_expected_cards(
    service: TestClient, loaded: str, cases: list[Case]
):
    failures = []
    for case, call in calls(cases):
        response = post(service, request_for(case, call, loaded))
        assert response.status_code == 200, f"{case.id}/{call['name']}: {response.text}"
        if not matches(response.json()["cards"], call):
            failures.append(
                f"{case.id}/{call['name']}: {describe(response.json()['cards'])} != {expected_of(call)}"
            )
    assert not failures, "\n".join(failures)


def test_partial_prefetch_gives_the_same_cards(service: TestClient, loaded: str, cases: list[Case]):
    templates = discovery_templates(service)
    failures = []
    for case, call in calls(cases):
        full = prefetch_for(as_case_dict(case), templates[call["hook"]])
        partial = {key: value for index, (key, value) in enumerate(sorted(full.items())) if index % 2 == 0}
        response = post(service, request_for(case, call, loaded, prefetch=partial))
        assert response.status_code == 200, response.text
        if not matches(response.json()["cards"], call):
            failures.append(f"{case.id}/{call['name']}")
    assert not failures


@pytest.fixture(scope="module")
def proxy(loaded: str) -> Iterator[ProxyState]:
    with running_proxy(loaded) as state:
        yield state


def with_token(body: dict) -> dict:
    body["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "postfusion-cds",
    }
    return body


def test_paging_is_followed_and_the_token_reaches_the_server(
    proxy: ProxyState, cases: list[Case], tmp_path_factory
):
    proxy.requests.clear()
    case = next(c for c in cases if c.id == "p05-rev-met-pseudarthrosis")
    call = next(c for c in case.calls if c["name"] == "sign-revision")
    with app_client(
        tmp_path_factory, fhir_allowed_servers=[proxy.base], fhir_page_size=2, fhir_timeout_s=30
    ) as client:
        response = post(client, with_token(request_for(case, call, proxy.base)))
    assert response.status_code == 200, response.text
    assert matches(response.json()["cards"], call)
    procedures = sum(r["resourceType"] == "Procedure" for r in case.resources)
    first_page = [r for r in proxy.requests if r.path == "/fhir/Procedure"]
    next_pages = [r for r in proxy.requests if r.path == "/fhir" and "_getpages=" in r.query]
    assert len(first_page) == 1 and "_count=2" in first_page[0].query
    # every page of 2 was fetched, through the server's own next links (all keys' pages together)
    assert procedures > 2 and len(next_pages) >= -(-procedures // 2) - 1
    assert {r.authorization for r in proxy.requests} == {f"Bearer {TOKEN}"}


def test_too_many_pages_is_412(proxy: ProxyState, cases: list[Case], tmp_path_factory):
    case = next(c for c in cases if c.id == "p05-rev-met-pseudarthrosis")
    call = case.calls[0]
    settings = {
        "fhir_allowed_servers": [proxy.base],
        "fhir_page_size": 1,
        "fhir_max_pages": 2,
        "fhir_timeout_s": 30,
    }
    with app_client(tmp_path_factory, **settings) as client:
        response = post(client, request_for(case, call, proxy.base))
    assert response.status_code == 412
    assert any("too many pages" in issue["diagnostics"] for issue in response.json()["issue"])


def test_failing_fhir_server_is_412(proxy: ProxyState, cases: list[Case], tmp_path_factory):
    case = cases[0]
    proxy.fail_status = 500
    try:
        with app_client(tmp_path_factory, fhir_allowed_servers=[proxy.base]) as client:
            response = post(client, request_for(case, case.calls[0], proxy.base))
    finally:
        proxy.fail_status = None
    assert response.status_code == 412
    assert all("answered 500" in issue["diagnostics"] for issue in response.json()["issue"])


def test_unreachable_fhir_server_is_412_quickly(cases: list[Case], tmp_path_factory):
    closed = f"http://127.0.0.1:{free_port()}/fhir"  # nothing listens there
    case = cases[0]
    with app_client(tmp_path_factory, fhir_allowed_servers=[closed], fhir_timeout_s=2) as client:
        started = time.monotonic()
        response = post(client, request_for(case, case.calls[0], closed))
        elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert elapsed < 3, elapsed
    assert all("could not connect" in issue["diagnostics"] for issue in response.json()["issue"])


def test_smoke_command_prints_an_all_pass_table(loaded: str, capsys):
    from cds_service import cli

    assert cli.main(["smoke", "--fhir", loaded, "--keep"]) == 0
    output = capsys.readouterr().out
    total = sum(
        len(case.calls) for case in __import__("cds_service.cli.cases", fromlist=["load_cases"]).load_cases()
    )
    assert output.strip().splitlines()[-1] == f"{total} passed, 0 failed"


def test_loading_is_idempotent_and_tagged(loaded: str, cases: list[Case]):
    import asyncio

    from cds_service.cli.cases import FIXTURE_TAG
    from cds_service.cli.smoke import load

    asyncio.run(load(loaded, cases))  # a second load replaces, it does not duplicate
    tag = f"{FIXTURE_TAG['system']}|{FIXTURE_TAG['code']}"
    found = httpx.get(f"{loaded}/Patient", params={"_tag": tag, "_count": 200}, timeout=60).json()
    assert sorted(e["resource"]["id"] for e in found.get("entry", [])) == sorted(case.id for case in cases)
