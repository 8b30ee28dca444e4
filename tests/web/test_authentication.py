"""The service with CDS_AUTH=jwt: only correctly signed calls from trusted clients get an answer, each
rejection is a bare 401, and a client's token only reaches the FHIR servers listed for it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.web.app import create_app

from support.fhir_server import free_port
from support.hooks import ROOT, SERVICES, hook_request, rule_ids
from support.waiting import wait_for

KEY = ec.generate_private_key(ec.SECP384R1())
OTHER = ec.generate_private_key(ec.SECP384R1())
ISS = "https://ehr.example.org"
CALL = f"/cds-services/{SERVICES['order-sign']}"


def jwks() -> dict[str, Any]:
    return {
        "keys": [
            {**jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1", "use": "sig"}
        ]
    }


@pytest.fixture
def trusted(tmp_path: Path, fhir) -> Path:
    base, _ = fhir
    path = tmp_path / "trusted-clients.yaml"
    path.write_text(json.dumps({"clients": [{"iss": ISS, "jwks": jwks(), "fhir_servers": [base]}]}))
    return path


@pytest.fixture
def secured(client_factory, trusted):
    return client_factory(auth="jwt", trusted_clients=trusted, public_base_url="http://testserver")


def bearer(aud: str, key: Any = KEY, **claims: Any) -> dict[str, str]:
    now = int(time.time())
    payload = {"iss": ISS, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), **claims}
    token = jwt.encode(payload, key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})
    return {"Authorization": f"Bearer {token}"}


def test_signed_calls_from_a_trusted_client_are_served(secured, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="cds_service.audit"):
        discovery = secured.get("/cds-services", headers=bearer("http://testserver/cds-services"))
        call = secured.post(CALL, json=hook_request("order-sign"), headers=bearer(f"http://testserver{CALL}"))
        feedback = secured.post(
            f"{CALL}/feedback",
            json={
                "feedback": [
                    {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-01T12:00:00Z"}
                ]
            },
            headers=bearer(f"http://testserver{CALL}/feedback"),
        )
    assert discovery.status_code == 200 and len(discovery.json()["services"]) == 3
    assert call.status_code == 200 and rule_ids(call) == [("REV-NOT-MET", "warning")]
    assert feedback.status_code == 200
    assert caplog.text.count(f"iss={ISS} status=200") == 3


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        bearer("http://testserver/cds-services/another-service"),
        bearer(f"http://testserver{CALL}", key=OTHER),
        bearer(f"http://testserver{CALL}", iss="https://unknown.example.org"),
        bearer(f"http://testserver{CALL}", exp=int(time.time()) - 60),
    ],
    ids=["none", "basic", "wrong aud", "wrong key", "unknown iss", "expired"],
)
def test_every_rejection_is_a_bare_401(secured, headers, caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        response = secured.post(CALL, json=hook_request("order-sign"), headers=headers)
    assert response.status_code == 401
    assert response.json()["issue"][0]["diagnostics"] == "authentication failed"
    assert "rejected POST" in caplog.text  # the reason goes to the log, not to the caller


def test_a_replayed_token_is_refused(secured):
    headers = bearer(f"http://testserver{CALL}")
    assert secured.post(CALL, json=hook_request("order-sign"), headers=headers).status_code == 200
    assert secured.post(CALL, json=hook_request("order-sign"), headers=headers).status_code == 401


def test_discovery_and_feedback_need_a_token_too(secured):
    assert secured.get("/cds-services").status_code == 401
    assert secured.post(f"{CALL}/feedback", json={"feedback": []}).status_code == 401


def test_preflight_and_health_need_no_token(secured):
    preflight = secured.options(
        CALL, headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 200
    assert secured.get("/healthz").status_code == 200


def test_audience_is_the_public_url_behind_a_proxy(client_factory, trusted):
    client = client_factory(
        auth="jwt", trusted_clients=trusted, public_base_url="https://cds.example.org/api"
    )
    internal = bearer(f"http://testserver{CALL}")
    public = bearer(f"https://cds.example.org/api{CALL}")
    assert client.post(CALL, json=hook_request("order-sign"), headers=internal).status_code == 401
    assert client.post(CALL, json=hook_request("order-sign"), headers=public).status_code == 200


def test_a_client_reaches_only_its_own_fhir_servers(secured, fhir):
    base, state = fhir
    body = hook_request("order-sign")
    for value in body["prefetch"].values():
        state.load([entry["resource"] for entry in (value or {}).get("entry", [])])
    del body["prefetch"]["conditions"]
    body["fhirServer"] = base  # listed for this client
    assert secured.post(CALL, json=body, headers=bearer(f"http://testserver{CALL}")).status_code == 200
    assert [r.path for r in state.data_requests] == ["/fhir/Condition"]
    body["fhirServer"] = "https://ehr.example.org/fhir"  # not listed for this client
    response = secured.post(CALL, json=body, headers=bearer(f"http://testserver{CALL}"))
    assert response.status_code == 412 and "not allowlisted" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("aud", "headers"),
    [
        ("http://other-cds.example:9999", {"Host": "other-cds.example:9999"}),
        ("https://other-cds.example:9999", {"Host": "other-cds.example:9999", "X-Forwarded-Proto": "https"}),
    ],
)
def test_a_token_signed_for_another_service_is_refused_whatever_the_host_header(secured, aud, headers):
    """#17.1: `aud` never follows request headers, so another CDS service cannot replay its tokens here."""
    replayed = {**bearer(f"{aud}{CALL}"), **headers}
    assert secured.post(CALL, json=hook_request("order-sign"), headers=replayed).status_code == 401


def test_jwt_mode_refuses_to_start_without_a_public_base_url(settings_factory, trusted):
    with pytest.raises(ValueError, match="CDS_PUBLIC_BASE_URL"):
        create_app(settings_factory(auth="jwt", trusted_clients=trusted))


def test_jwt_mode_refuses_to_start_without_trusted_clients(settings_factory):
    with pytest.raises(ValueError, match="CDS_TRUSTED_CLIENTS"):
        create_app(settings_factory(auth="jwt"))


def test_serve_dev_binds_loopback_and_verifies_nobody(tmp_path: Path):
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'f.sqlite3'}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "cds_service", "serve", "--dev", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/cds-services", timeout=1),
            timeout=30,
            interval=0.05,
            what="the dev server to answer",
            ignoring=(httpx.TransportError,),
        )
        assert response.status_code == 200
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=15)
    assert f"Uvicorn running on http://127.0.0.1:{port}" in errors
    assert "CDS_AUTH=off" in errors


@pytest.mark.parametrize("name", ["trusted-clients.yaml", "trusted-clients.sandbox.yaml"])
def test_the_documented_trusted_client_files_load(name):
    from cds_service.auth import load_trusted_clients

    clients = load_trusted_clients(ROOT / "docs" / "examples" / name)
    assert clients and all(client.fhir_servers for client in clients)
