"""Tokens exactly as the public CDS Hooks sandbox signs them (src/retrieve-data-helpers/jwt-generator.js).

The sandbox's key pair is public: the JWKS below is `.well-known/jwks.json` and the private key is
`keys/ecprivkey.pem`, both committed in cds-hooks/sandbox. So these are real sandbox tokens, and also why
the sandbox must never be a trusted client in production: anyone can mint its tokens.
"""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from jwt_support import bearer

from cds_service.auth import JwtVerifier, TrustedClient
from cds_service.store import SeenTokens

SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_JWKS = {
    "keys": [
        {
            "kty": "EC",
            "use": "sig",
            "crv": "P-384",
            "kid": SANDBOX_KID,
            "x": "dw_JGR8nB2I6XveNxUOl2qk699ZPLM2nYI5STSdiEl9avAkrm3CkfYMbrrjr8laB",
            "y": "Sm3mLE-n1zYNla_aiE3cb3nZsL51RbC7ysw3q8aJLxGm-hx79RPMYpITDjp7kgzy",
            "alg": "ES384",
        }
    ]
}
SANDBOX_PRIVATE_PEM = b"""-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDI5xiX1DMwqcEVSI9k
oGKMNX+WwS2fqhYVU6q0XJdtj/5XrdYIFhh3Gwuj09yWvzihZANiAAR3D8kZHycH
Yjpe943FQ6XaqTr31k8szadgjlJNJ2ISX1q8CSubcKR9gxuuuOvyVoFKbeYsT6fX
Ng2Vr9qITdxvedmwvnVFsLvKzDerxokvEab6HHv1E8xikhMOOnuSDPI=
-----END PRIVATE KEY-----
"""
SANDBOX_KEY = serialization.load_pem_private_key(SANDBOX_PRIVATE_PEM, password=None)


def sandbox_token(audience: str) -> str:
    """What generateJWT(audience) produces."""
    now = round(time.time())
    payload = {"iss": SANDBOX_ISS, "aud": audience, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    headers = {"typ": "JWT", "kid": SANDBOX_KID, "jku": SANDBOX_JKU}
    return jwt.encode(payload, SANDBOX_KEY, algorithm="ES384", headers=headers)


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"unexpected fetch of {request.url}")


def test_committed_private_key_matches_published_jwks() -> None:
    published = jwt.PyJWK(SANDBOX_JWKS["keys"][0]).key.public_numbers()
    assert SANDBOX_KEY.public_key().public_numbers() == published


async def test_sandbox_token_with_pinned_jwks(seen_tokens: SeenTokens) -> None:
    """Inline keys are pinned: the allowlisted jku is tolerated but not fetched (tests stay offline)."""
    client = TrustedClient(
        iss=SANDBOX_ISS, jwks_url=None, jwks=SANDBOX_JWKS, jku_allowlist=(SANDBOX_JKU,), fhir_servers=()
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as http:
        verifier = JwtVerifier([client], http, replay=seen_tokens)
        for aud in ("http://localhost:8000/cds-services", "http://localhost:8000/cds-services/back-pain"):
            verified = await verifier.verify(bearer(sandbox_token(aud)), aud)
            assert (verified.iss, verified.tenant) == (SANDBOX_ISS, None)


async def test_sandbox_token_with_fetched_jwks(seen_tokens: SeenTokens) -> None:
    """The production-shaped set-up: keys from the allowlisted jku, fetched once (here from a mock)."""
    fetched: list[str] = []

    def sandbox_site(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, json=SANDBOX_JWKS)

    client = TrustedClient(
        iss=SANDBOX_ISS, jwks_url=SANDBOX_JKU, jwks=None, jku_allowlist=(SANDBOX_JKU,), fhir_servers=()
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(sandbox_site)) as http:
        verifier = JwtVerifier([client], http, replay=seen_tokens)
        aud = "https://cds.example.org/cds-services/back-pain"
        await verifier.verify(bearer(sandbox_token(aud)), aud)
        await verifier.verify(bearer(sandbox_token(aud)), aud)
    assert fetched == [SANDBOX_JKU]
