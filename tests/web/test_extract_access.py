"""`$extract` for the SMART capture app: it sends the EHR's access token and the FHIR server it is for; the
service asks that server (only an allowed one) for the response's patient with the token, and answers with
the transaction Bundle only if the server shows the patient to it. Every refusal is an OperationOutcome
that says why; a refused server is never contacted; the token is never logged."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.fhir import FhirFetcher
from cds_service.web.errors import BadGateway, Forbidden, status_of
from cds_service.web.smart_access import SmartAccess, SmartCaller

from support.fhir_server import PATIENT, ConnectionTrap, free_port
from support.hooks import ROOT

QUESTIONNAIRE = orjson.loads((ROOT / "plandefinitions/questionnaires/post-fusion-screen.json").read_bytes())
EXTRACT = "/fhir/QuestionnaireResponse/$extract"
TOKEN = "smart-access-token-3f9a1c7e5b2d4086"
P1 = {"reference": "Patient/p1"}
FORM = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.UUID(int=16)}"}


def screen(subject: Any = P1) -> dict[str, Any]:
    body = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{QUESTIONNAIRE['url']}|{QUESTIONNAIRE['version']}",
        "status": "completed",
        "identifier": FORM,
        "subject": subject,
        "author": {"reference": "Practitioner/dr-1"},
        "authored": "2026-10-30T10:00:00Z",
        "item": [
            {
                "linkId": "red-flags",
                "item": [{"linkId": "rf-wound-drainage", "answer": [{"valueBoolean": False}]}],
            }
        ],
    }
    return {key: value for key, value in body.items() if value is not None}


def from_app(client, server: str, token: str | None = TOKEN, body: dict[str, Any] | None = None):
    headers = {"X-FHIR-Server": server}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(EXTRACT, json=screen() if body is None else body, headers=headers)


def outcome(response) -> tuple[str, list[str]]:
    (issue,) = response.json()["issue"]
    return issue["diagnostics"], issue.get("expression", [])


def patient_reads(state) -> list[Any]:
    return [r for r in state.data_requests if r.path.startswith("/fhir/Patient/")]


@pytest.fixture
def ehr(fhir):
    """The suite's FHIR server as the EHR's, holding patient p1."""
    base, state = fhir
    state.load([PATIENT])
    return base, state


@pytest.fixture
def app(client_factory, ehr):
    return client_factory(fhir_allowed_servers=[ehr[0]])


def test_a_token_the_fhir_server_accepts_for_the_patient_gets_the_transaction(app, ehr):
    base, state = ehr
    response = from_app(app, base)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "transaction"
    stored, observation = bundle["entry"]
    assert stored["request"]["ifNoneExist"] == f"identifier={FORM['system']}|{FORM['value']}"
    assert observation["resource"]["performer"] == [{"reference": "Practitioner/dr-1"}]
    (read,) = patient_reads(state)
    assert (read.method, read.path, read.authorization) == ("GET", "/fhir/Patient/p1", f"Bearer {TOKEN}")


def test_a_positive_answer_is_remembered_for_that_token_server_and_patient(app, ehr):
    base, state = ehr
    state.load([{**PATIENT, "id": "p2"}])
    assert from_app(app, base).status_code == 200
    assert from_app(app, base).status_code == 200
    assert len(patient_reads(state)) == 1  # the second call asked nothing
    assert from_app(app, base, token="another-token").status_code == 200
    assert from_app(app, base, body=screen({"reference": "Patient/p2"})).status_code == 200
    assert [r.path for r in patient_reads(state)] == ["/fhir/Patient/p1"] * 2 + ["/fhir/Patient/p2"]


def test_a_server_off_the_allowlist_is_refused_and_never_contacted(app):
    with ConnectionTrap() as trap:
        response = from_app(app, trap.base)
        assert response.status_code == 403
        assert outcome(response) == (
            "X-FHIR-Server names a FHIR server this service may not contact",
            ["http.X-FHIR-Server"],
        )
        assert trap.connections == 0


def test_plain_http_is_refused_where_https_is_required_and_never_contacted(client_factory):
    with ConnectionTrap() as trap:
        strict = client_factory(fhir_allowed_servers=[trap.base], fhir_allow_http=False)
        response = from_app(strict, trap.base)
        assert response.status_code == 403
        assert outcome(response) == (
            "X-FHIR-Server refused: fhirServer must use https",
            ["http.X-FHIR-Server"],
        )
        assert trap.connections == 0


@pytest.mark.parametrize("status", [401, 403])
def test_a_token_the_fhir_server_refuses_is_a_401(app, ehr, status):
    base, state = ehr
    state.fail_status = {"Patient": status}
    response = from_app(app, base)
    assert response.status_code == 401
    assert outcome(response) == ("the FHIR server did not accept the access token", ["http.Authorization"])


def test_a_patient_the_server_does_not_show_the_token_is_a_403(app, ehr):
    base, _ = ehr
    response = from_app(app, base, body=screen({"reference": "Patient/someone-else"}))
    assert response.status_code == 403
    assert outcome(response) == (
        "the FHIR server does not show this patient to the access token",
        ["QuestionnaireResponse.subject"],
    )


@pytest.mark.parametrize("authorization", [None, "Basic dXNlcjpwYXNz", "Bearer ", "Bearer two words"])
def test_without_a_bearer_token_nothing_is_asked(app, ehr, authorization):
    base, state = ehr
    headers = {"X-FHIR-Server": base} | ({"Authorization": authorization} if authorization else {})
    response = app.post(EXTRACT, json=screen(), headers=headers)
    assert response.status_code == 401
    assert outcome(response)[1] == ["http.Authorization"]
    assert state.requests == []


@pytest.mark.parametrize(
    "subject", [None, {"reference": "Group/g1"}, {"reference": "Patient/"}, {"display": "Jane"}, "Patient/p1"]
)
def test_the_subject_must_be_a_patient_reference(app, ehr, subject):
    base, state = ehr
    response = from_app(app, base, body=screen(subject))
    assert response.status_code == 400
    assert outcome(response)[1] == ["QuestionnaireResponse.subject"]
    assert state.requests == []


def test_an_unreachable_or_failing_server_is_a_502_in_words(client_factory, ehr):
    base, state = ehr
    gone = f"http://127.0.0.1:{free_port()}/fhir"
    app = client_factory(fhir_allowed_servers=[base, gone])
    response = from_app(app, gone)
    assert response.status_code == 502
    assert outcome(response)[0] == (
        "could not check the access token with the FHIR server: could not connect to FHIR server"
    )
    state.fail_status = {"Patient": 500}
    response = from_app(app, base)
    assert response.status_code == 502
    assert outcome(response)[0].endswith("FHIR server answered 500")


def test_the_token_is_never_logged(client_factory, ehr, caplog):
    base, state = ehr
    app = client_factory(fhir_allowed_servers=[base], log_level="DEBUG")
    with caplog.at_level(logging.DEBUG):
        assert from_app(app, base).status_code == 200
        state.fail_status = {"Patient": 401}
        assert from_app(app, base, token=f"{TOKEN}-2").status_code == 401
        assert from_app(app, f"{base}-elsewhere").status_code == 403
    assert "fhir fetch" in caplog.text and "refused a SMART app" in caplog.text  # the calls were logged
    assert TOKEN not in caplog.text


def test_without_x_fhir_server_the_open_development_service_stays_open(app, ehr):
    response = app.post(EXTRACT, json=screen())
    assert response.status_code == 200
    assert ehr[1].requests == []


KEY = ec.generate_private_key(ec.SECP384R1())
ISS = "https://ehr.example.org"


@pytest.fixture
def secured(client_factory, ehr, tmp_path: Path):
    """CDS_AUTH=jwt with one trusted client whose FHIR server is the EHR's; CDS_FHIR_ALLOWED_SERVERS empty."""
    public = {**jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True), "kid": "k1"}
    trusted = tmp_path / "trusted-clients.json"
    trusted.write_text(
        json.dumps({"clients": [{"iss": ISS, "jwks": {"keys": [public]}, "fhir_servers": [ehr[0]]}]})
    )
    return client_factory(auth="jwt", trusted_clients=trusted, public_base_url="http://testserver")


def test_with_jwt_auth_a_trusted_clients_fhir_server_may_be_named(secured, ehr):
    base, _ = ehr
    assert secured.post(EXTRACT, json=screen()).status_code == 401  # a CDS client still needs its JWT
    now = int(time.time())
    claims = {"iss": ISS, "aud": f"http://testserver{EXTRACT}", "iat": now, "exp": now + 300, "jti": "j1"}
    signed = jwt.encode(claims, KEY, algorithm="ES384", headers={"kid": "k1"})
    assert (
        secured.post(EXTRACT, json=screen(), headers={"Authorization": f"Bearer {signed}"}).status_code == 200
    )
    assert from_app(secured, base).status_code == 200
    with ConnectionTrap() as trap:
        assert from_app(secured, trap.base).status_code == 403
        assert trap.connections == 0


async def test_a_remembered_answer_expires(ehr):
    base, state = ehr
    now = [0.0]
    access = SmartAccess(ttl_s=300, clock=lambda: now[0])
    caller = SmartCaller(base, TOKEN)
    assert TOKEN not in repr(caller)
    async with httpx.AsyncClient() as client:
        fetcher = FhirFetcher(client, [base])
        await access.authorise(fetcher, caller, screen())
        now[0] = 299
        await access.authorise(fetcher, caller, screen())
        now[0] = 301
        await access.authorise(fetcher, caller, screen())
    assert len(patient_reads(state)) == 2


def test_the_new_refusals_have_their_statuses():
    assert status_of(Forbidden.single("no", None)) == 403
    assert status_of(BadGateway.single("down", None)) == 502
