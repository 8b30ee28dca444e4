"""Good CDS Hooks JWTs are accepted, and JWKS documents are fetched only as often as they must be."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from jwt_support import (
    AUD,
    EC_JKU,
    EC_ROTATED,
    ISS,
    ISS_INLINE,
    ISS_TENANT,
    RSA_KEY,
    FakeClock,
    JwksServer,
    bearer,
    claims,
    public_jwk,
    token,
)

from cds_service.auth import AuthError, JwtVerifier


async def test_es384_via_jwks_url(verifier: JwtVerifier, jwks_server: JwksServer) -> None:
    verified = await verifier.verify(bearer(token(claims(jti="j-es"))), AUD)
    assert (verified.iss, verified.jti, verified.tenant) == (ISS, "j-es", None)
    assert verified.client.fhir_servers == ("https://fhir.example.org/r4",)
    assert jwks_server.counts["main"] == 1


async def test_rs384_via_inline_jwks(verifier: JwtVerifier, jwks_server: JwksServer) -> None:
    verified = await verifier.verify(bearer(token(claims(iss=ISS_INLINE), RSA_KEY, "RS384", "rsa-1")), AUD)
    assert verified.iss == ISS_INLINE
    assert sum(jwks_server.counts.values()) == 0


async def test_allowlisted_jku(verifier: JwtVerifier, jwks_server: JwksServer) -> None:
    await verifier.verify(bearer(token(key=EC_JKU, kid="jku-1", jku=jwks_server.url("jku"))), AUD)
    assert jwks_server.counts == {"jku": 1}


async def test_aud_array_and_lowercase_scheme(verifier: JwtVerifier) -> None:
    await verifier.verify("bearer " + token(claims(aud=["https://other.example", AUD])), AUD)


async def test_epic_style_extra_claims(verifier: JwtVerifier, clock: FakeClock) -> None:
    extra = claims(sub="client-id-123", nbf=int(clock.now) - 10, client_id="x", extension={"a": 1})
    await verifier.verify(bearer(token(extra)), AUD)


async def test_tenant(verifier: JwtVerifier) -> None:
    verified = await verifier.verify(bearer(token(claims(iss=ISS_TENANT, tenant="t-1"))), AUD)
    assert verified.tenant == "t-1"


async def test_clock_skew_within_leeway(verifier: JwtVerifier, clock: FakeClock) -> None:
    await verifier.verify(bearer(token(claims(now=clock.now + 20))), AUD)  # issuer's clock 20 s ahead
    await verifier.verify(bearer(token(claims(now=clock.now - 320))), AUD)  # expired 20 s ago


async def test_rotated_key_accepted_after_refresh(
    verifier: JwtVerifier, jwks_server: JwksServer, clock: FakeClock
) -> None:
    await verifier.verify(bearer(token()), AUD)
    jwks_server.docs["main"]["keys"].append(public_jwk(EC_ROTATED, "ec-2"))
    rotated = bearer(token(claims(now=clock.now), key=EC_ROTATED, kid="ec-2"))
    clock.now += 5  # within the refresh interval: no refetch yet
    with pytest.raises(AuthError, match="unknown kid"):
        await verifier.verify(rotated, AUD)
    assert jwks_server.counts["main"] == 1
    clock.now += 30
    assert (await verifier.verify(rotated, AUD)).iss == ISS
    assert jwks_server.counts["main"] == 2


async def test_jwks_cached_until_ttl(
    verifier: JwtVerifier, jwks_server: JwksServer, clock: FakeClock
) -> None:
    await verifier.verify(bearer(token()), AUD)
    await verifier.verify(bearer(token()), AUD)
    assert jwks_server.counts["main"] == 1
    clock.now += 301
    await verifier.verify(bearer(token(claims(now=clock.now))), AUD)
    assert jwks_server.counts["main"] == 2


async def test_stale_jwks_used_while_issuer_is_down(
    verifier: JwtVerifier, jwks_server: JwksServer, clock: FakeClock
) -> None:
    await verifier.verify(bearer(token()), AUD)
    jwks_server.docs["main"] = 503
    clock.now += 301
    await verifier.verify(bearer(token(claims(now=clock.now))), AUD)
    assert jwks_server.counts["main"] == 2


async def random_kid_flood(verifier: JwtVerifier, now: float) -> list[Any]:
    tokens = [bearer(token(claims(now=now), kid=str(uuid.uuid4()))) for _ in range(100)]
    return await asyncio.gather(*(verifier.verify(t, AUD) for t in tokens), return_exceptions=True)


async def test_random_kid_flood_is_rate_limited(
    verifier: JwtVerifier, jwks_server: JwksServer, clock: FakeClock
) -> None:
    results = await random_kid_flood(verifier, clock.now)
    assert all(isinstance(r, AuthError) and r.reason.startswith("unknown kid") for r in results)
    assert jwks_server.counts["main"] == 1  # cold cache: one fetch, the refreshes are rate-limited
    clock.now += 31
    await random_kid_flood(verifier, clock.now)
    assert jwks_server.counts["main"] == 2  # one refresh per interval, not one per token


async def test_custom_algorithms(make_verifier: Any) -> None:
    verifier: JwtVerifier = make_verifier(algorithms=("RS256",))
    await verifier.verify(bearer(token(claims(iss=ISS_INLINE), RSA_KEY, "RS256", "rsa-1")), AUD)
    with pytest.raises(AuthError, match="alg not allowed"):
        await verifier.verify(bearer(token()), AUD)
