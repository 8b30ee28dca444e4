"""Keys, token builders and a counting loopback JWKS server for the JWT verification tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from support.fhir_server import serving

T0 = 1_800_000_000.0
AUD = "https://cds.example.org/cds-services/back-pain"
ISS = "https://ehr.example.org"
ISS_INLINE = "https://rsa.example.org"
ISS_TENANT = "https://tenant.example.org"

EC_KEY = ec.generate_private_key(ec.SECP384R1())
EC_OTHER = ec.generate_private_key(ec.SECP384R1())  # "wrong key", published nowhere
EC_ROTATED = ec.generate_private_key(ec.SECP384R1())
EC_JKU = ec.generate_private_key(ec.SECP384R1())
EC_P256 = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: Any, kid: str, **extra: Any) -> dict[str, Any]:
    algorithm = (
        jwt.algorithms.RSAAlgorithm
        if isinstance(private_key, rsa.RSAPrivateKey)
        else jwt.algorithms.ECAlgorithm
    )
    return {**algorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": kid, **extra}


def public_pem(private_key: Any) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def claims(now: float = T0, **overrides: Any) -> dict[str, Any]:
    """Sandbox-shaped claims; an override of None drops the claim."""
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "iat": int(now),
        "exp": int(now) + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def token(
    payload: dict[str, Any] | None = None,
    key: Any = EC_KEY,
    alg: str = "ES384",
    kid: str | None = "ec-1",
    **headers: Any,
) -> str:
    """A JWT signed with PyJWT; `kid` None leaves it out."""
    extra = {"kid": kid, **headers} if kid is not None else headers
    return jwt.encode(payload if payload is not None else claims(), key, algorithm=alg, headers=extra)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_built(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None = None) -> str:
    """A compact JWS built without PyJWT, for headers PyJWT refuses to write (`none`, HS* with a PEM)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[header["alg"]]
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), digest).digest())}"


def bearer(jwt_text: str) -> str:
    return f"Bearer {jwt_text}"


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class JwksServer:
    """Serves `docs[name]` at /jwks/{name}.json (an int: that HTTP status); counts requests per name."""

    base_url: str
    docs: dict[str, Any] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def url(self, name: str) -> str:
        return f"{self.base_url}/jwks/{name}.json"

    def reset(self) -> None:
        self.docs.clear()
        self.counts.clear()


@contextmanager
def running_jwks_server() -> Iterator[JwksServer]:
    server = JwksServer(base_url="")

    async def jwks(request: Request) -> Response:
        name = request.path_params["name"]
        server.counts[name] += 1
        if name == "redirect":
            return RedirectResponse(server.url("main"), status_code=302)
        doc = server.docs.get(name, 404)
        if isinstance(doc, int):
            return Response(status_code=doc)
        return JSONResponse(doc)

    app = Starlette(routes=[Route("/jwks/{name}.json", jwks)])
    with serving(app) as url:
        server.base_url = url
        yield server
