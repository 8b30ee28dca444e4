"""HAPI as the EHR's FHIR server in a SMART launch: it publishes the authorization server's configuration at
`{base}/.well-known/smart-configuration` (readable from a browser on another origin) and, while it does,
refuses a bearer token the authorization server does not call active. A request without a token passes as
before. Real HTTP against the running HAPI and the tests' SMART server."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support.smart_server import SmartServer

APP = "http://127.0.0.1:8/capture/index.html"
ORIGIN = "http://127.0.0.1:8"
PATIENT = {
    "resourceType": "Patient",
    "id": "smart-launch-p1",
    "name": [{"family": "Launch", "given": ["Sam"]}],
    "gender": "female",
    "birthDate": "1961-05-04",
}
FHIR_JSON = "application/fhir+json"


@pytest.fixture
def patient(hapi: str) -> Iterator[str]:
    """A patient on HAPI, written and removed without a token."""
    written = httpx.put(
        f"{hapi}/Patient/{PATIENT['id']}", json=PATIENT, headers={"Content-Type": FHIR_JSON}, timeout=60
    )
    assert written.status_code in (200, 201), written.text
    yield str(PATIENT["id"])
    httpx.delete(f"{hapi}/Patient/{PATIENT['id']}", timeout=60)


@pytest.fixture
def launched(smart_hapi: Callable[..., tuple[str, SmartServer]]) -> tuple[str, SmartServer]:
    return smart_hapi(APP)


def access_token(smart: SmartServer, patient: str) -> dict[str, Any]:
    """The code flow as the capture app runs it: EHR launch, authorize with PKCE, exchange the code."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    config = smart.configuration()
    authorized = httpx.get(
        config["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": "cds-capture",
            "redirect_uri": APP,
            "scope": "launch openid fhirUser patient/*.rs patient/Observation.c",
            "state": "s",
            "aud": smart.fhir_base,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "launch": smart.launch(patient, '{"plan":"x"}', "Practitioner/dr-1"),
        },
        timeout=10,
    )
    assert authorized.status_code == 302, authorized.text
    code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": APP, "client_id": "cds-capture"}
    answer = httpx.post(config["token_endpoint"], data=form | {"code_verifier": verifier}, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def read(hapi: str, patient: str, authorization: str | None) -> httpx.Response:
    headers = {"Accept": FHIR_JSON, "Origin": ORIGIN}
    if authorization is not None:
        headers["Authorization"] = authorization
    return httpx.get(f"{hapi}/Patient/{patient}", headers=headers, timeout=60)


def test_hapi_publishes_the_smart_configuration_to_any_origin(launched: tuple[str, SmartServer]):
    hapi, smart = launched

    response = httpx.get(
        f"{hapi}/.well-known/smart-configuration", headers={"Origin": ORIGIN, "Accept": "*/*"}, timeout=60
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json() == smart.configuration()
    assert response.json()["token_endpoint"] == f"{smart.url}/token"


def test_a_read_with_an_active_token_passes(launched: tuple[str, SmartServer], patient: str):
    hapi, smart = launched
    token = access_token(smart, patient)
    assert token["patient"] == patient

    response = read(hapi, patient, f"Bearer {token['access_token']}")

    assert response.status_code == 200, response.text
    assert response.json()["id"] == patient


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-token-anyone-issued", "Basic dXNlcjpwYXNz"], ids=["unknown", "basic"]
)
def test_a_read_with_a_token_the_server_did_not_issue_is_refused(
    launched: tuple[str, SmartServer], patient: str, authorization: str
):
    hapi, _ = launched

    response = read(hapi, patient, authorization)

    assert response.status_code == 401
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["access-control-allow-origin"] == "*"  # the browser app can read why


def test_a_read_without_a_token_passes_as_before(launched: tuple[str, SmartServer], patient: str):
    hapi, _ = launched
    assert read(hapi, patient, None).status_code == 200


def test_without_a_smart_configuration_hapi_publishes_none_and_checks_no_token(hapi: str, patient: str):
    published = httpx.get(f"{hapi}/.well-known/smart-configuration", timeout=60)
    assert published.status_code == 404
    assert published.json()["resourceType"] == "OperationOutcome"

    assert read(hapi, patient, "Bearer anything").status_code == 200
