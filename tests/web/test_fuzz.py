"""Fuzzing the HTTP surface: whatever arrives, the answer is a 4xx OperationOutcome or well-formed cards,
never a 5xx, a crash or a hang.

Schemathesis derives its cases from the OpenAPI document the app serves; the hypothesis properties go where
it cannot: arbitrary JSON, broken variants of valid requests, and bodies too large or too deep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from starlette.routing import Route
from starlette.testclient import TestClient

from cds_service.web.openapi import build_openapi, openapi
from cds_service.web.routes import ROUTES

from support.fuzzing import (
    JSON_VALUES,
    answered_within,
    check_answer,
    check_cards,
    check_outcome,
    encode,
    mutated,
)
from support.hooks import SERVICES, hook_request

BOUNDED = settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
JSON_HEADERS = {"Content-Type": "application/json"}
FUZZED_HOOKS = ["order-sign", "patient-view"]
OPERATIONS = sorted(
    {
        (method, route.path)
        for route in ROUTES
        if isinstance(route, Route)  # not the capture app's static files
        for method in route.methods or ()
        if method != "HEAD"
    }
    | {("GET", "/openapi.json")}
)
SMALL_BODY = 65_536  # a byte limit that large bodies pass quickly
QUICK_S = 2.0  # what a refusal of a large or deep body may take
HANG_S = 10.0  # past this, any request counts as hung


@pytest.fixture
def fuzz_client(client_factory: Callable[..., TestClient]) -> TestClient:
    """The app with its lifespan running, serving /openapi.json even before app.py registers the route."""
    client = client_factory()
    if client.get("/openapi.json").status_code == 404:
        client.app.router.routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    return client


def post(client: TestClient, hook: str, content: bytes | Iterator[bytes]) -> tuple[int, Any, float]:
    """Status, decoded body and seconds taken of one service call."""
    start = time.monotonic()
    with answered_within(HANG_S):
        response = client.post(f"/cds-services/{SERVICES[hook]}", content=content, headers=JSON_HEADERS)
    return response.status_code, response.json(), time.monotonic() - start


def test_openapi_is_served_by_the_app(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == build_openapi(client.app_state["cds"].rules.services)


def test_openapi_is_valid_and_describes_every_route(fuzz_client: TestClient) -> None:
    document = fuzz_client.get("/openapi.json").json()
    schemathesis.openapi.from_dict(document).validate()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert set(OPERATIONS) <= documented
    service_id = document["paths"]["/cds-services/{service_id}"]["parameters"][0]["schema"]
    assert service_id["enum"] == list(fuzz_client.app_state["cds"].rules.services)
    request = document["components"]["schemas"]["HookRequest"]["properties"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in request["context"]["anyOf"]} == {
        "PatientViewContext",
        "OrderSignContext",
        "OrderSelectContext",
    }
    errors = [
        answer
        for item in document["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for status, answer in operation["responses"].items()
        if status.startswith("4") or status == "500"
    ]
    assert errors and all(answer["$ref"].startswith("#/components/responses/") for answer in errors)
    outcome = {"$ref": "#/components/schemas/OperationOutcome"}
    assert all(
        answer["content"]["application/json"]["schema"] == outcome
        for answer in document["components"]["responses"].values()
    )


def _send(client: TestClient, case: Case) -> Any:
    """Send a schemathesis case through our TestClient, so the one lifespan it started serves it
    (schemathesis' own ASGI client would start a second lifespan on another event loop)."""
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url))
    kwargs.pop("cookies", None)
    if "data" in kwargs:
        kwargs["content"] = kwargs.pop("data")
    with answered_within(HANG_S):
        return client.request(**kwargs)


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [(method, path, GenerationMode.POSITIVE) for method, path in OPERATIONS]
    # only a request body, or the service_id that comes with it, can be made invalid
    + [(method, path, GenerationMode.NEGATIVE) for method, path in OPERATIONS if method == "POST"],
    ids=lambda value: value.value if isinstance(value, GenerationMode) else value,
)
def test_schemathesis(fuzz_client: TestClient, method: str, path: str, mode: GenerationMode) -> None:
    """Each operation of the served document: no 5xx, and every 4xx an OperationOutcome."""
    operation = schemathesis.openapi.from_dict(fuzz_client.get("/openapi.json").json())[path][method]
    statuses: list[int] = []

    @settings(BOUNDED, max_examples=40)
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        response = _send(fuzz_client, case)
        statuses.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400:
            check_outcome(response.status_code, response.json())

    run()
    assert statuses


def test_unknown_routes_and_methods_answer_with_an_outcome(fuzz_client: TestClient) -> None:
    for method, path, status in [("GET", "/nowhere", 404), ("DELETE", "/cds-services", 405)]:
        response = fuzz_client.request(method, path)
        assert response.status_code == status
        check_outcome(status, response.json())


def envelopes(hook: str) -> st.SearchStrategy[dict[str, Any]]:
    """Requests shaped like a hook call, with random JSON wherever a member goes."""
    return st.fixed_dictionaries(
        {"hook": st.just(hook) | JSON_VALUES, "hookInstance": st.uuids().map(str), "context": JSON_VALUES},
        optional={"fhirServer": JSON_VALUES, "fhirAuthorization": JSON_VALUES, "prefetch": JSON_VALUES},
    )


@pytest.mark.parametrize("hook", FUZZED_HOOKS)
@settings(BOUNDED, max_examples=150)
@given(data=st.data())
def test_arbitrary_json_never_fails_the_server(
    fuzz_client: TestClient, hook: str, data: st.DataObject
) -> None:
    body = data.draw(JSON_VALUES | envelopes(hook))
    status, answer, _ = post(fuzz_client, hook, encode(body))
    check_answer(status, answer)


def test_the_examples_mutated_below_are_valid(fuzz_client: TestClient) -> None:
    for hook in FUZZED_HOOKS:
        status, answer, _ = post(fuzz_client, hook, encode(hook_request(hook)))
        assert status == 200, answer
        check_cards(answer)
        assert answer["cards"]


@pytest.mark.parametrize("hook", FUZZED_HOOKS)
@settings(BOUNDED, max_examples=200)
@given(data=st.data())
def test_mutated_valid_requests_never_fail_the_server(
    fuzz_client: TestClient, hook: str, data: st.DataObject
) -> None:
    mutations, body = data.draw(mutated(hook_request(hook)))
    note(f"mutations: {mutations}")
    status, answer, _ = post(fuzz_client, hook, encode(body))
    check_answer(status, answer)


def _no_procedures(body: dict[str, Any]) -> None:
    body["prefetch"]["procedures"] = {"resourceType": "Bundle", "type": "searchset", "total": 0}


def _procedure_without_date(body: dict[str, Any]) -> None:
    del body["prefetch"]["procedures"]["entry"][0]["resource"]["performedDateTime"]


@pytest.mark.parametrize(
    ("hook", "change"),
    [("order-select", _no_procedures), ("order-sign", _procedure_without_date)],
    ids=["order-select, no procedures: hardware-removal", "order-sign, performedDateTime absent: revision"],
)
def test_no_plan_fails_on_valid_but_sparse_data(
    client: TestClient, caplog: pytest.LogCaptureFixture, hook: str, change: Callable[[dict[str, Any]], None]
) -> None:
    body = hook_request(hook)
    change(body)
    with caplog.at_level(logging.INFO, logger="cds_service.audit"):
        status, answer, _ = post(client, hook, encode(body))
    check_answer(status, answer)
    assert "failed_plans=-" in caplog.text


def _nested(depth: int, container: str) -> bytes:
    return b"[" * depth + b"]" * depth if container == "list" else b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("hook", FUZZED_HOOKS)
@settings(BOUNDED, max_examples=25)
@given(
    depth=st.integers(65, 50_000),
    container=st.sampled_from(["list", "dict"]),
    where=st.sampled_from(["body", "context", "prefetch"]),
)
def test_deep_bodies_are_refused_quickly(
    fuzz_client: TestClient, hook: str, depth: int, container: str, where: str
) -> None:
    example = hook_request(hook)
    if where == "context":
        example["context"]["encounterId"] = "DEEP"
    else:
        example["prefetch"]["conditions"] = "DEEP"
    body = (
        _nested(depth, container)
        if where == "body"
        else encode(example).replace(b'"DEEP"', _nested(depth, container))
    )
    status, answer, seconds = post(fuzz_client, hook, body)
    assert status in (400, 413), answer
    check_outcome(status, answer)
    assert seconds < QUICK_S


@pytest.fixture
def small_client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory(max_body_bytes=SMALL_BODY)


@pytest.mark.parametrize("hook", FUZZED_HOOKS)
@settings(BOUNDED, max_examples=25)
@given(
    size=st.integers(SMALL_BODY + 1, 8 * SMALL_BODY),
    chunked=st.booleans(),
)
def test_large_bodies_are_refused_quickly(
    small_client: TestClient, hook: str, size: int, chunked: bool
) -> None:
    """Past the byte limit, whether Content-Length says so up front or the body arrives chunked."""
    content = encode({**hook_request(hook), "padding": "x" * size})
    status, answer, seconds = post(
        small_client, hook, iter([content[:1000], content[1000:]]) if chunked else content
    )
    assert status == 413, answer
    check_outcome(status, answer)
    assert seconds < QUICK_S


@pytest.mark.parametrize("hook", FUZZED_HOOKS)
def test_too_many_resources_are_refused_quickly(client: TestClient, hook: str) -> None:
    """One more resource than the default limit allows, well within the byte limit."""
    limit = client.app_state["cds"].settings.max_resources
    example = hook_request(hook)
    observation = example["prefetch"]["observations"]["entry"][0]
    example["prefetch"]["observations"]["entry"] = [observation] * (limit + 1)
    status, answer, seconds = post(client, hook, encode(example))
    assert status == 413, answer
    check_outcome(status, answer)
    assert seconds < QUICK_S
