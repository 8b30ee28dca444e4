"""One request id follows a call: taken from the caller (when it is a plain token) or made up, returned in the
response, and sent on with every FHIR request made for the call."""

from __future__ import annotations

import re

import pytest

from support.hooks import SERVICES, hook_request, serve_prefetch_from, with_server

CALL = f"/cds-services/{SERVICES['order-sign']}"


def test_the_callers_id_reaches_the_fhir_server_and_comes_back(fhir, client_factory) -> None:
    base, state = fhir
    client = client_factory(fhir_allowed_servers=[base])
    body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, body)
    del body["prefetch"]
    response = client.post(CALL, json=body, headers={"X-Request-ID": "ehr-7f3a.call:42"})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "ehr-7f3a.call:42"
    assert state.requests and {request.request_id for request in state.requests} == {"ehr-7f3a.call:42"}


@pytest.mark.parametrize("given", [None, "", "short", "has space in it", "x" * 129, "Patient/123456789"])
def test_a_missing_or_unsafe_id_is_replaced(client_factory, given: str | None) -> None:
    client = client_factory()
    headers = {"X-Request-ID": given} if given is not None else {}
    response = client.post(CALL, json=hook_request("order-sign"), headers=headers)
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_each_call_gets_its_own_id_and_errors_carry_one_too(client_factory) -> None:
    client = client_factory()
    ids = {client.post(CALL, json=hook_request("order-sign")).headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
    assert "X-Request-ID" in client.post(CALL, content=b"{not json").headers


def test_browsers_may_send_and_read_it(client_factory) -> None:
    client = client_factory()
    preflight = client.options(
        CALL,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-request-id",
        },
    )
    assert preflight.status_code == 200
    assert "x-request-id" in preflight.headers["access-control-allow-headers"].lower()
    response = client.post(
        CALL, json=hook_request("order-sign"), headers={"Origin": "https://sandbox.cds-hooks.org"}
    )
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
