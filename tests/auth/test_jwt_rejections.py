"""Every way a CDS Hooks bearer JWT can be wrong is refused with an AuthError whose reason is safe to log."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from jwt_support import (
    AUD,
    EC_KEY,
    EC_OTHER,
    ISS_INLINE,
    ISS_TENANT,
    RSA_KEY,
    T0,
    JwksServer,
    b64,
    bearer,
    claims,
    hand_built,
    public_pem,
    token,
)

from cds_service.auth import AuthError, JwtVerifier

HEADER = {"alg": "ES384", "typ": "JWT", "kid": "ec-1"}


def tampered() -> str:
    """A valid token whose payload was swapped for another well-formed one after signing."""
    head, _, signature = token().split(".")
    forged = json.dumps(claims(jti="forged")).encode()
    return f"{head}.{b64(forged)}.{signature}"


def replayed() -> list[str | None]:
    same = bearer(token(claims(jti="once")))
    return [same, same]


# (id, headers to send in order: all but the last are accepted, reason expected for the last)
Case = tuple[str, Callable[[JwksServer], list[str | None]], str]
CASES: list[Case] = [
    ("missing header", lambda s: [None], "missing authorization"),
    ("empty header", lambda s: [""], "missing authorization"),
    ("not bearer", lambda s: [f"Basic {token()}"], "not bearer"),
    ("bearer without token", lambda s: ["Bearer "], "malformed token"),
    ("garbage", lambda s: ["Bearer not-a-jwt"], "malformed token"),
    ("garbage segments", lambda s: ["Bearer aaa.bbb.ccc"], "malformed token"),
    ("five-part JWE", lambda s: ["Bearer a.b.c.d.e"], "malformed token"),
    ("expired", lambda s: [bearer(token(claims(now=T0 - 400)))], "expired"),
    (
        "wrong aud",
        lambda s: [bearer(token(claims(aud="https://cds.example.org/cds-services")))],
        "aud mismatch",
    ),
    (
        "aud array without ours",
        lambda s: [bearer(token(claims(aud=["https://a.example", "https://b.example"])))],
        "aud mismatch",
    ),
    ("unknown iss", lambda s: [bearer(token(claims(iss="https://evil.example")))], "unknown iss"),
    ("alg none", lambda s: [bearer(hand_built({**HEADER, "alg": "none"}, claims()))], "alg not allowed"),
    (
        "HS256 with the EC public key as secret",
        lambda s: [bearer(hand_built({**HEADER, "alg": "HS256"}, claims(), public_pem(EC_KEY)))],
        "alg not allowed",
    ),
    (
        "HS384",
        lambda s: [bearer(hand_built({**HEADER, "alg": "HS384"}, claims(), b"s" * 48))],
        "alg not allowed",
    ),
    (
        "RS256 not allowed",
        lambda s: [bearer(token(claims(iss=ISS_INLINE), RSA_KEY, "RS256", "rsa-1"))],
        "alg not allowed",
    ),
    ("unknown kid", lambda s: [bearer(token(kid="nope"))], "unknown kid"),
    ("kid of an encryption key", lambda s: [bearer(token(kid="enc-only"))], "unknown kid"),
    ("missing kid", lambda s: [bearer(token(kid=None))], "missing kid"),
    ("jku not allowlisted", lambda s: [bearer(token(jku=s.url("evil")))], "jku not allowlisted"),
    (
        "jku on a client without allowlist",
        lambda s: [bearer(token(claims(iss=ISS_TENANT), jku=s.url("main")))],
        "jku not allowlisted",
    ),
    ("replayed jti", lambda s: replayed(), "replayed jti"),
    ("iat in the future", lambda s: [bearer(token(claims(iat=int(T0) + 120)))], "iat in future"),
    ("exp too far after iat", lambda s: [bearer(token(claims(exp=int(T0) + 3601)))], "lifetime too long"),
    ("missing exp", lambda s: [bearer(token(claims(exp=None)))], "missing claim exp"),
    ("missing iat", lambda s: [bearer(token(claims(iat=None)))], "missing claim iat"),
    ("missing jti", lambda s: [bearer(token(claims(jti=None)))], "missing claim jti"),
    ("missing iss", lambda s: [bearer(token(claims(iss=None)))], "missing claim iss"),
    ("missing aud", lambda s: [bearer(token(claims(aud=None)))], "missing claim aud"),
    ("empty jti", lambda s: [bearer(token(claims(jti="")))], "bad jti"),
    ("exp not a number", lambda s: [bearer(token(claims(exp="soon")))], "bad exp"),
    ("tampered payload", lambda s: [bearer(tampered())], "signature"),
    ("different key, same kid", lambda s: [bearer(token(key=EC_OTHER))], "signature"),
    ("key type mismatch", lambda s: [bearer(token(kid="rsa-as-ec"))], "key type mismatch"),
    ("curve mismatch", lambda s: [bearer(token(kid="p256"))], "key type mismatch"),
    ("tenant mismatch", lambda s: [bearer(token(claims(iss=ISS_TENANT, tenant="t-2")))], "tenant mismatch"),
    ("tenant missing", lambda s: [bearer(token(claims(iss=ISS_TENANT)))], "tenant mismatch"),
    ("typ not JWT", lambda s: [bearer(token(typ="at+jwt"))], "typ not JWT"),
    ("typ absent", lambda s: [bearer(hand_built({"alg": "ES384", "kid": "ec-1"}, claims()))], "typ not JWT"),
    ("nbf in the future", lambda s: [bearer(token(claims(nbf=int(T0) + 120)))], "not yet valid"),
]


@pytest.mark.parametrize(("build", "reason"), [pytest.param(b, r, id=i) for i, b, r in CASES])
async def test_rejected(
    verifier: JwtVerifier, jwks_server: JwksServer, build: Callable[[JwksServer], list[Any]], reason: str
) -> None:
    *accepted, last = build(jwks_server)
    for header in accepted:
        await verifier.verify(header, AUD)
    with pytest.raises(AuthError) as caught:
        await verifier.verify(last, AUD)
    assert caught.value.reason.startswith(reason)
    if last and len(last) > 20:
        assert last.split()[-1] not in caught.value.reason
        assert last.split()[-1][:30] not in str(caught.value)


def test_enough_cases() -> None:
    assert len(CASES) >= 22


async def test_unallowlisted_jku_is_never_fetched(verifier: JwtVerifier, jwks_server: JwksServer) -> None:
    with pytest.raises(AuthError, match="jku not allowlisted"):
        await verifier.verify(bearer(token(jku=jwks_server.url("evil"))), AUD)
    assert jwks_server.counts["evil"] == 0
    assert sum(jwks_server.counts.values()) == 0


async def test_unknown_kid_refetches_once_then_gives_up(
    verifier: JwtVerifier, jwks_server: JwksServer, clock: Any
) -> None:
    await verifier.verify(bearer(token()), AUD)
    clock.now += 31
    with pytest.raises(AuthError, match="unknown kid"):
        await verifier.verify(bearer(token(claims(now=clock.now), kid="nope")), AUD)
    assert jwks_server.counts["main"] == 2


async def test_attacker_strings_are_clipped(verifier: JwtVerifier) -> None:
    long_iss = "https://evil.example/" + "x" * 500 + "\nforged log line"
    with pytest.raises(AuthError) as caught:
        await verifier.verify(bearer(token(claims(iss=long_iss))), AUD)
    assert len(caught.value.reason) < 100
    assert "\n" not in caught.value.reason


async def test_oversized_token(verifier: JwtVerifier) -> None:
    with pytest.raises(AuthError, match="token too large"):
        await verifier.verify(bearer(token(claims(pad="x" * 20_000))), AUD)


async def test_failed_token_does_not_burn_its_jti(verifier: JwtVerifier) -> None:
    with pytest.raises(AuthError, match="signature"):
        await verifier.verify(bearer(token(claims(jti="j-1"), key=EC_OTHER)), AUD)
    assert (await verifier.verify(bearer(token(claims(jti="j-1"))), AUD)).jti == "j-1"


async def test_jwks_unavailable(make_verifier: Any, jwks_server: JwksServer) -> None:
    jwks_server.docs["main"] = 500
    with pytest.raises(AuthError, match="jwks unavailable"):
        await make_verifier().verify(bearer(token()), AUD)


async def test_redirects_are_not_followed(
    clients: list[Any], http: Any, clock: Any, jwks_server: JwksServer, seen_tokens: Any
) -> None:
    redirected = [replace(clients[0], jwks_url=jwks_server.url("redirect"))]
    with pytest.raises(AuthError, match="jwks unavailable"):
        await JwtVerifier(redirected, http, clock=clock, replay=seen_tokens).verify(bearer(token()), AUD)
    assert jwks_server.counts["redirect"] == 1
    assert jwks_server.counts["main"] == 0


@pytest.mark.parametrize("algorithms", [("HS256",), ("ES384", "none"), ()])
def test_symmetric_or_none_algorithms_cannot_be_configured(
    clients: list[Any], http: Any, algorithms: tuple[str, ...], seen_tokens: Any
) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        JwtVerifier(clients, http, algorithms=algorithms, replay=seen_tokens)
