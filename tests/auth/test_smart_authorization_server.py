"""The tests' SMART authorization server (tests/support/smart_server.py) behaves as SMART App Launch 2.x and
OAuth 2.0 say: the code flow with PKCE from an EHR launch or a standalone one, and every refusal the capture
app's tests rely on. Real HTTP against the running server; its FHIR base is only a name here."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from support.smart_server import SmartServer, running_smart_server

FHIR_BASE = "http://127.0.0.1:9/fhir"
CLIENT = "cds-capture"
REDIRECT = "http://127.0.0.1:8/capture/index.html"
APP_CONTEXT = '{"questionnaire":"http://postfusion-cds.org/fhir/Questionnaire/post-fusion-screen|2.0.0"}'
SCOPE = "launch openid fhirUser patient/*.rs patient/Observation.c"


@pytest.fixture(scope="module")
def smart() -> Iterator[SmartServer]:
    with running_smart_server(FHIR_BASE, CLIENT, [REDIRECT, "http://127.0.0.1:8/other"]) as server:
        yield server


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(smart: SmartServer, challenge: str, **params: str | None) -> httpx.Response:
    """GET /authorize with a valid EHR-launch request, changed by `params` (None drops one)."""
    query: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": REDIRECT,
        "scope": SCOPE,
        "state": "st-1",
        "aud": FHIR_BASE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "launch": smart.launch("p1", APP_CONTEXT, "Practitioner/dr-1"),
    }
    query.update(params)
    sent = {name: value for name, value in query.items() if value is not None}
    return httpx.get(f"{smart.url}/authorize", params=sent, follow_redirects=False, timeout=10)


def redirected(response: httpx.Response) -> dict[str, str]:
    """The query of the redirect back to the app (which must go to the registered redirect URI)."""
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {name: values[0] for name, values in parse_qs(location.query).items()}


def exchange(smart: SmartServer, code: str, verifier: str, /, **form: str) -> httpx.Response:
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT,
        "code_verifier": verifier,
    } | form
    return httpx.post(f"{smart.url}/token", data=body, timeout=10)


def code_for(smart: SmartServer, challenge: str, **params: str | None) -> str:
    answer = redirected(authorize(smart, challenge, **params))
    assert answer["state"] == "st-1"
    return answer["code"]


def test_the_configuration_names_the_endpoints_and_capabilities(smart: SmartServer):
    config = smart.configuration()
    assert config["issuer"] == smart.url
    for endpoint in ("authorization_endpoint", "token_endpoint", "introspection_endpoint", "jwks_uri"):
        assert config[endpoint].startswith(f"{smart.url}/")
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["grant_types_supported"] == ["authorization_code"]
    assert {"launch-ehr", "launch-standalone", "client-public", "permission-v2", "sso-openid-connect"} <= set(
        config["capabilities"]
    )
    discovery = httpx.get(f"{smart.url}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == smart.url
    assert discovery["jwks_uri"] == config["jwks_uri"]


def test_an_ehr_launch_yields_a_token_with_the_launch_context(smart: SmartServer):
    verifier, challenge = pkce()
    code = code_for(smart, challenge, scope=f"{SCOPE} user/*.cruds offline_access")

    response = exchange(smart, code, verifier)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] > 0
    assert token["scope"] == SCOPE  # what may not be granted is dropped
    assert token["patient"] == "p1"
    assert token["appContext"] == APP_CONTEXT
    assert token["need_patient_banner"] is False
    signing_key = jwt.PyJWKClient(f"{smart.url}/jwks").get_signing_key_from_jwt(token["id_token"])
    identity: dict[str, Any] = jwt.decode(
        token["id_token"], signing_key.key, algorithms=["RS256"], audience=CLIENT, issuer=smart.url
    )
    assert identity["fhirUser"] == f"{FHIR_BASE}/Practitioner/dr-1"
    assert {"sub", "iat", "exp"} <= identity.keys()
    assert smart.issued[-1].patient == "p1"
    assert smart.issued[-1].app_context == APP_CONTEXT


def test_an_issued_token_is_active_at_introspection_and_an_unknown_one_is_not(smart: SmartServer):
    verifier, challenge = pkce()
    token = exchange(smart, code_for(smart, challenge), verifier).json()["access_token"]

    active = httpx.post(f"{smart.url}/introspect", data={"token": token}, timeout=10).json()
    unknown = httpx.post(f"{smart.url}/introspect", data={"token": "nope"}, timeout=10).json()

    assert active["active"] is True
    assert active["patient"] == "p1"
    assert active["client_id"] == CLIENT
    assert active["scope"] == SCOPE
    assert active["fhirUser"] == f"{FHIR_BASE}/Practitioner/dr-1"
    assert unknown == {"active": False}


def test_a_standalone_launch_picks_the_standalone_patient(smart: SmartServer):
    smart.standalone_patient = "p2"
    verifier, challenge = pkce()
    code = code_for(smart, challenge, scope="launch/patient patient/*.rs", launch=None)

    token = exchange(smart, code, verifier).json()

    assert token["patient"] == "p2"
    assert token["scope"] == "launch/patient patient/*.rs"
    assert "appContext" not in token
    assert "id_token" not in token  # openid fhirUser not asked


def test_the_browser_may_ask_for_a_token_from_another_origin(smart: SmartServer):
    preflight = httpx.options(
        f"{smart.url}/token",
        headers={"Origin": "http://127.0.0.1:8", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "params",
    [{"redirect_uri": "http://127.0.0.1:8/capture/evil.html"}, {"client_id": "someone-else"}],
    ids=["wrong redirect_uri", "unknown client"],
)
def test_a_request_for_an_unknown_client_or_redirect_gets_a_page_not_a_redirect(
    smart: SmartServer, params: dict[str, str]
):
    response = authorize(smart, pkce()[1], **params)
    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"launch": None}, "invalid_request"),
        ({"launch": "never-issued"}, "invalid_request"),
        ({"aud": "http://127.0.0.1:9/other-fhir"}, "invalid_request"),
        ({"aud": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "user/*.cruds"}, "invalid_scope"),
    ],
    ids=["no launch", "unknown launch", "wrong aud", "no aud", "no PKCE", "plain PKCE", "implicit", "scope"],
)
def test_a_bad_authorization_request_is_refused_back_to_the_app(
    smart: SmartServer, params: dict[str, str | None], error: str
):
    answer = redirected(authorize(smart, pkce()[1], **params))
    assert answer["error"] == error
    assert answer["error_description"]
    assert answer["state"] == "st-1"
    assert "code" not in answer


def test_a_launch_is_used_once(smart: SmartServer):
    launch = smart.launch("p1", None, "Practitioner/dr-1")
    assert "code" in redirected(authorize(smart, pkce()[1], launch=launch))

    again = redirected(authorize(smart, pkce()[1], launch=launch))

    assert again["error"] == "invalid_request"


def test_a_standalone_patient_launch_without_a_patient_to_pick_is_refused(smart: SmartServer):
    smart.standalone_patient = None
    answer = redirected(authorize(smart, pkce()[1], scope="launch/patient patient/*.rs", launch=None))
    assert answer["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"code_verifier": "not-the-verifier-" + "x" * 30}, "invalid_grant"),
        ({"code_verifier": ""}, "invalid_grant"),
        ({"redirect_uri": "http://127.0.0.1:8/other"}, "invalid_grant"),
        ({"code": "never-issued"}, "invalid_grant"),
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
    ],
    ids=["wrong verifier", "no verifier", "other redirect", "unknown code", "unknown client", "grant type"],
)
def test_a_bad_token_request_is_refused_as_rfc_6749_says(
    smart: SmartServer, form: dict[str, str], error: str
):
    verifier, challenge = pkce()
    code = code_for(smart, challenge)

    response = exchange(smart, code, verifier, **form)

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


def test_a_code_is_exchanged_once(smart: SmartServer):
    verifier, challenge = pkce()
    code = code_for(smart, challenge)
    assert exchange(smart, code, verifier).status_code == 200

    again = exchange(smart, code, verifier)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_code_tried_with_the_wrong_verifier_is_spent(smart: SmartServer):
    verifier, challenge = pkce()
    code = code_for(smart, challenge)
    assert exchange(smart, code, "guess-" + "y" * 40).status_code == 400

    assert exchange(smart, code, verifier).json()["error"] == "invalid_grant"
