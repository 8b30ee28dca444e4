"""The project's HAPI FHIR answers cross-origin requests: the CDS Hooks sandbox runs in a browser on its own
origin and reads the FHIR server directly, first `/metadata`, then the patient's data."""

from __future__ import annotations

import httpx

SANDBOX = "https://sandbox.cds-hooks.org"


def test_a_preflight_for_metadata_is_allowed_with_the_fhir_headers(hapi: str):
    response = httpx.options(
        f"{hapi}/metadata",
        headers={
            "Origin": SANDBOX,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, accept, content-type, prefer",
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PUT", "DELETE", "OPTIONS"} <= methods
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "accept", "content-type", "prefer"} <= allowed


def test_a_preflight_for_a_header_fhir_does_not_use_is_refused(hapi: str):
    response = httpx.options(
        f"{hapi}/metadata",
        headers={
            "Origin": SANDBOX,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-not-a-fhir-header",
        },
        timeout=60,
    )
    assert "access-control-allow-origin" not in response.headers


def test_a_cross_origin_read_gets_allow_origin_and_can_see_where_things_are(hapi: str):
    response = httpx.get(
        f"{hapi}/metadata", headers={"Origin": SANDBOX, "Accept": "application/fhir+json"}, timeout=60
    )
    assert response.status_code == 200
    assert response.json()["resourceType"] == "CapabilityStatement"
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"location", "content-location"} <= exposed


def test_a_request_without_origin_gets_no_cors_headers(hapi: str):
    response = httpx.get(f"{hapi}/metadata", timeout=60)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
