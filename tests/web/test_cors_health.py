"""CORS preflight for browser clients such as the CDS Hooks sandbox, and the health endpoints."""

import pytest

from support.hooks import SERVICES

ROUTES = [
    "/cds-services",
    f"/cds-services/{SERVICES['patient-view']}",
    f"/cds-services/{SERVICES['order-sign']}/feedback",
    "/healthz",
]
SANDBOX = "https://sandbox.cds-hooks.org"


def preflight(client, path: str, origin: str):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


@pytest.mark.parametrize("path", ROUTES)
def test_preflight_is_answered_on_every_route(client, path):
    response = preflight(client, path, SANDBOX)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["access-control-allow-methods"]


def test_preflight_allows_private_network_access_for_a_public_sandbox(client):
    response = client.options(
        "/cds-services",
        headers={
            "Origin": SANDBOX,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert response.headers["access-control-allow-private-network"] == "true"


def test_configured_origins_are_the_only_ones_allowed(client_factory):
    client = client_factory(cors_origins=[SANDBOX, "http://localhost:8080"])
    assert preflight(client, ROUTES[1], SANDBOX).headers["access-control-allow-origin"] == SANDBOX
    refused = preflight(client, ROUTES[1], "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = client.get("/cds-services", headers={"Origin": SANDBOX})
    assert simple.headers["access-control-allow-origin"] == SANDBOX


def test_healthz_is_alive(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_plan_definitions_and_store(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"planDefinitions": True, "store": True}}


def test_readyz_is_503_when_the_store_is_unreachable(client, monkeypatch):
    async def down() -> bool:
        return False

    monkeypatch.setattr(client.app_state["cds"].database, "ping", down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["store"] is False
