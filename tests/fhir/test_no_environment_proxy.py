"""#17.3: HTTP_PROXY/HTTPS_PROXY in the environment must not reach the service's own HTTP clients: a proxy
could answer JWKS and FHIR requests and would receive the FHIR bearer token. Only CDS_HTTP_PROXY routes
through a proxy, and then the FHIR server's allowlist still applies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.fhir_server import running_fhir_server
from support.hooks import SERVICES, TOKEN, hook_request, serve_prefetch_from, with_server
from support.recording_proxy import ProxyState


@pytest.fixture
def environment_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyState]:
    """A recording server named by every proxy variable a client library might honour."""
    from support.recording_proxy import running_proxy

    with running_fhir_server() as (upstream, _), running_proxy(upstream) as proxy:
        address = proxy.base.removesuffix("/fhir")
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, address)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield proxy


def fallback_body(base: str) -> dict:
    body = with_server(hook_request("order-sign"), base)
    body.pop("prefetch")
    return body


def test_the_environment_proxy_never_sees_a_fhir_call_or_its_token(environment_proxy, fhir, client_factory):
    base, state = fhir
    serve_prefetch_from(state, hook_request("order-sign"))
    client = client_factory(fhir_allowed_servers=[base])
    response = client.post(f"/cds-services/{SERVICES['order-sign']}", json=fallback_body(base))
    assert response.status_code == 200, response.text
    assert environment_proxy.requests == []
    assert state.requests and {seen.authorization for seen in state.requests} == {f"Bearer {TOKEN}"}


def test_an_explicit_proxy_setting_is_used(fhir, client_factory):
    base, state = fhir
    serve_prefetch_from(state, hook_request("order-sign"))
    from support.recording_proxy import running_proxy

    with running_proxy(base) as proxy:
        client = client_factory(fhir_allowed_servers=[base], http_proxy=proxy.base.removesuffix("/fhir"))
        response = client.post(f"/cds-services/{SERVICES['order-sign']}", json=fallback_body(base))
    assert response.status_code == 200, response.text
    assert proxy.requests, "the configured proxy carried the FHIR calls"
