"""Fixtures for the JWT tests: the loopback JWKS server, the trusted clients and a verifier factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from jwt_support import (
    EC_JKU,
    EC_KEY,
    EC_P256,
    ISS,
    ISS_INLINE,
    ISS_TENANT,
    RSA_KEY,
    FakeClock,
    JwksServer,
    public_jwk,
    running_jwks_server,
)

from cds_service.auth import JwtVerifier, TrustedClient
from cds_service.store import SeenTokens


@pytest.fixture(scope="session")
def jwks_server_session() -> Iterator[JwksServer]:
    with running_jwks_server() as server:
        yield server


@pytest.fixture
def jwks_server(jwks_server_session: JwksServer) -> JwksServer:
    """Fresh documents and zeroed counters for every test."""
    server = jwks_server_session
    server.reset()
    server.docs["main"] = {
        "keys": [
            public_jwk(EC_KEY, "ec-1", use="sig", alg="ES384"),
            public_jwk(RSA_KEY, "rsa-as-ec"),  # for the key type mismatch case
            public_jwk(EC_P256, "p256"),  # right kty, wrong curve for ES384
            public_jwk(EC_KEY, "enc-only", use="enc"),
        ]
    }
    server.docs["jku"] = {"keys": [public_jwk(EC_JKU, "jku-1")]}
    server.docs["evil"] = {"keys": [public_jwk(EC_KEY, "ec-1")]}
    return server


@pytest.fixture
def clients(jwks_server: JwksServer) -> list[TrustedClient]:
    return [
        TrustedClient(
            iss=ISS,
            jwks_url=jwks_server.url("main"),
            jwks=None,
            jku_allowlist=(jwks_server.url("jku"),),
            fhir_servers=("https://fhir.example.org/r4",),
        ),
        TrustedClient(
            iss=ISS_INLINE,
            jwks_url=None,
            jwks={"keys": [public_jwk(RSA_KEY, "rsa-1", use="sig")]},
            jku_allowlist=(),
            fhir_servers=(),
        ),
        TrustedClient(
            iss=ISS_TENANT,
            jwks_url=jwks_server.url("main"),
            jwks=None,
            jku_allowlist=(),
            fhir_servers=(),
            tenant="t-1",
        ),
    ]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def make_verifier(
    clients: list[TrustedClient], http: httpx.AsyncClient, clock: FakeClock, seen_tokens: SeenTokens
) -> Callable[..., JwtVerifier]:
    def make(**options: Any) -> JwtVerifier:
        return JwtVerifier(clients, http, clock=clock, replay=seen_tokens, **options)

    return make


@pytest.fixture
def verifier(make_verifier: Callable[..., JwtVerifier]) -> JwtVerifier:
    return make_verifier()
