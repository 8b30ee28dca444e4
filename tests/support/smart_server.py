"""The tests' SMART App Launch 2.x authorization server: the EHR's half of a launch, small but strict.

`running_smart_server(fhir_base, client_id, redirect_uris)` serves it on a free loopback port and yields a
`SmartServer`. It knows one public client (PKCE S256 required, no secret) and auto-approves (the tests are the
user), but refuses what a real server refuses: a wrong client or redirect URI with a 400 page (never a
redirect, RFC 6749 §4.1.2.1), a wrong `aud`, a missing, unknown or used `launch`, a code used twice or with
the wrong `code_verifier`. Access tokens are opaque; `/introspect` (RFC 7662) says which are active, so a
FHIR server can check them. With `openid fhirUser` the token answer carries an RS256 `id_token` whose key
`/jwks` publishes. `issued` keeps what was granted, for assertions, without the tokens themselves.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from support.fhir_server import serving

CODE_LIFETIME_S = 60
TOKEN_LIFETIME_S = 3600
CONTEXT_SCOPES = ("openid", "fhirUser", "launch", "launch/patient")
# Patient-level resource scopes, SMART v2 (`patient/Observation.c`, `patient/*.rs`) or v1 (`.read`)
RESOURCE_SCOPE = re.compile(r"patient/(\*|[A-Z][A-Za-z]+)\.(c?r?u?d?s?|read|write|\*)")


@dataclass(frozen=True)
class Context:
    """Who and what a launch is about."""

    patient: str | None
    app_context: str | None
    fhir_user: str
    ehr_launch: bool


@dataclass(frozen=True)
class Grant:
    """An authorization code's request, kept until the code is exchanged (once)."""

    redirect_uri: str
    scope: str
    code_challenge: str
    nonce: str | None
    context: Context
    expires_at: float


@dataclass(frozen=True)
class Issued:
    """One access token as granted (the token itself is not kept here)."""

    client_id: str
    scope: str
    patient: str | None
    app_context: str | None
    fhir_user: str  # absolute URL on the FHIR server, as the id_token's fhirUser claim
    expires_at: int


class SmartServer:
    """State of the authorization server; the tests register launches and read what was issued."""

    def __init__(self, fhir_base: str, client_id: str, redirect_uris: list[str]) -> None:
        self.url = ""  # set once it serves
        self.fhir_base = fhir_base.rstrip("/")
        self.client_id = client_id
        self.redirect_uris = list(redirect_uris)
        self.standalone_patient: str | None = None  # what a standalone `launch/patient` picks
        self.standalone_user = "Practitioner/standalone-user"
        self.issued: list[Issued] = []
        self._launches: dict[str, Context] = {}
        self._codes: dict[str, Grant] = {}
        self._tokens: dict[str, Issued] = {}
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)

    def configuration(self) -> dict[str, Any]:
        """The document a FHIR server publishes at `{base}/.well-known/smart-configuration`."""
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "introspection_endpoint": f"{self.url}/introspect",
            "revocation_endpoint": f"{self.url}/revoke",
            "jwks_uri": f"{self.url}/jwks",
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "response_types_supported": ["code"],
            "scopes_supported": [*CONTEXT_SCOPES, "patient/*.cruds", "patient/*.rs"],
            "capabilities": [
                "launch-ehr",
                "launch-standalone",
                "client-public",
                "context-ehr-patient",
                "context-standalone-patient",
                "permission-patient",
                "permission-v2",
                "sso-openid-connect",
            ],
        }

    def launch(self, patient: str, app_context: str | None, fhir_user: str) -> str:
        """Register an EHR launch; return the opaque `launch` value the EHR puts in the launch URL."""
        value = secrets.token_urlsafe(16)
        self._launches[value] = Context(patient, app_context, self._absolute(fhir_user), ehr_launch=True)
        return value

    def _absolute(self, reference: str) -> str:
        return reference if "://" in reference else f"{self.fhir_base}/{reference}"

    def _context(self, scopes: list[str], launch: str | None) -> Context | str:
        """The launch context the scopes ask for, or why there is none."""
        if "launch" in scopes:
            if not launch:
                return "launch is required with the launch scope"
            if (context := self._launches.pop(launch, None)) is None:
                return "unknown or already used launch"
            return context
        patient = None
        if "launch/patient" in scopes:
            if self.standalone_patient is None:
                return "no patient to pick for launch/patient"
            patient = self.standalone_patient
        return Context(patient, None, self._absolute(self.standalone_user), ehr_launch=False)

    def authorize(self, params: dict[str, str]) -> Response:
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            return PlainTextResponse("unknown client_id or unregistered redirect_uri", status_code=400)
        state = params.get("state")

        def back(**answer: str) -> Response:
            query = urlencode({**answer, **({"state": state} if state else {})})
            return RedirectResponse(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}", 302)

        def refuse(error: str, description: str) -> Response:
            return back(error=error, error_description=description)

        scopes = params.get("scope", "").split()
        granted = [s for s in scopes if s in CONTEXT_SCOPES or RESOURCE_SCOPE.fullmatch(s)]
        if params.get("response_type") != "code":
            return refuse("unsupported_response_type", "response_type must be code")
        if not state:
            return refuse("invalid_request", "state is required")
        if params.get("aud", "").rstrip("/") != self.fhir_base:
            return refuse("invalid_request", "aud is not this server's FHIR base URL")
        if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
            return refuse("invalid_request", "PKCE with code_challenge_method S256 is required")
        if not granted:
            return refuse("invalid_scope", "no requested scope can be granted")
        context = self._context(scopes, params.get("launch"))
        if isinstance(context, str):
            return refuse("invalid_request", context)
        code = secrets.token_urlsafe(24)
        self._codes[code] = Grant(
            redirect_uri,
            " ".join(granted),
            params["code_challenge"],
            params.get("nonce"),
            context,
            time.monotonic() + CODE_LIFETIME_S,
        )
        return back(code=code)

    def token(self, form: dict[str, str]) -> dict[str, Any] | tuple[str, str]:
        """The token answer, or (error, description) as RFC 6749 §5.2 has it."""
        if form.get("grant_type") != "authorization_code":
            return "unsupported_grant_type", "only authorization_code is supported"
        if form.get("client_id") != self.client_id:
            return "invalid_client", "unknown client_id"
        grant = self._codes.pop(form.get("code", ""), None)  # one use, even when the rest is wrong
        if grant is None or grant.expires_at < time.monotonic():
            return "invalid_grant", "unknown, expired or already used code"
        if form.get("redirect_uri") != grant.redirect_uri:
            return "invalid_grant", "redirect_uri differs from the authorization request"
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.code_challenge:
            return "invalid_grant", "code_verifier does not match the code_challenge"
        context, scopes, now = grant.context, grant.scope.split(), int(time.time())
        issued = Issued(
            self.client_id,
            grant.scope,
            context.patient,
            context.app_context,
            context.fhir_user,
            now + TOKEN_LIFETIME_S,
        )
        access_token = secrets.token_urlsafe(32)
        self._tokens[access_token] = issued
        self.issued.append(issued)
        answer: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
            "scope": grant.scope,
        }
        if context.patient is not None:
            answer["patient"] = context.patient
            answer["need_patient_banner"] = not context.ehr_launch  # inside the EHR, its banner shows
        if context.app_context is not None:
            answer["appContext"] = context.app_context
        if "openid" in scopes and "fhirUser" in scopes:
            claims = {"iss": self.url, "sub": context.fhir_user, "aud": self.client_id, "iat": now}
            claims |= {"exp": now + TOKEN_LIFETIME_S, "fhirUser": context.fhir_user}
            if grant.nonce:
                claims["nonce"] = grant.nonce
            answer["id_token"] = jwt.encode(claims, self._key, "RS256", headers={"kid": self._kid})
        return answer

    def introspect(self, token: str) -> dict[str, Any]:
        issued = self._tokens.get(token)
        if issued is None or issued.expires_at <= time.time():
            return {"active": False}
        return {
            "active": True,
            "scope": issued.scope,
            "patient": issued.patient,
            "client_id": issued.client_id,
            "exp": issued.expires_at,
            "fhirUser": issued.fhir_user,
        }

    def revoke(self, token: str) -> None:
        """RFC 7009: withdraw a token (the user logged out, the session ended); from now on introspection
        calls it inactive, so the FHIR server refuses it. An unknown token is no error."""
        self._tokens.pop(token, None)

    def jwks(self) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self._kid, "use": "sig", "alg": "RS256"}]}

    def openid_configuration(self) -> dict[str, Any]:
        """OpenID Connect discovery at the issuer (the `sso-openid-connect` capability)."""
        config = self.configuration()
        keys = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported")
        return {key: config[key] for key in keys} | {
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


async def form(request: Request) -> dict[str, str]:
    """A form-encoded body (parsed here: Starlette's form parser needs python-multipart, not installed)."""
    if request.headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl((await request.body()).decode()))


def smart_app(server: SmartServer) -> Starlette:
    """The HTTP face of `server`; any origin may call it (the app asks for tokens from the browser)."""

    async def authorize(request: Request) -> Response:
        return server.authorize(dict(request.query_params))

    async def token(request: Request) -> Response:
        answer = server.token(await form(request))
        if isinstance(answer, tuple):
            body = {"error": answer[0], "error_description": answer[1]}
            return JSONResponse(body, status_code=400, headers=NO_STORE)
        return JSONResponse(answer, headers=NO_STORE)

    async def introspect(request: Request) -> Response:
        return JSONResponse(server.introspect((await form(request)).get("token", "")), headers=NO_STORE)

    async def revoke(request: Request) -> Response:
        server.revoke((await form(request)).get("token", ""))
        return Response(status_code=200)

    async def jwks(request: Request) -> Response:
        return JSONResponse(server.jwks())

    async def openid(request: Request) -> Response:
        return JSONResponse(server.openid_configuration())

    return Starlette(
        routes=[
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/introspect", introspect, methods=["POST"]),
            Route("/revoke", revoke, methods=["POST"]),
            Route("/jwks", jwks),
            Route("/.well-known/openid-configuration", openid),
        ],
        middleware=[Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"])],
    )


@contextmanager
def running_smart_server(fhir_base: str, client_id: str, redirect_uris: list[str]) -> Iterator[SmartServer]:
    """Serve a SmartServer for `fhir_base` on a free loopback port while the block lasts."""
    server = SmartServer(fhir_base, client_id, redirect_uris)
    with serving(smart_app(server)) as url:
        server.url = url
        yield server
