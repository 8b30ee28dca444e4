"""Verification of the CDS Hooks 2.0 client JWT (`Authorization: Bearer <jwt>`), "Trusting CDS Clients".

Nothing from the token is trusted before its signature has been checked against a key we chose: the header
only names an algorithm that must be on our allowlist and a kid to look up, and the unverified `iss` only
picks which client's keys to try.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt

from .clients import TrustedClient
from .errors import AuthError, clip
from .jwks import JwksCache
from .keys import KEY_SHAPES, find_jwk, key_for

REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]
MAX_TOKEN_CHARS = 16 * 1024  # a CDS Hooks JWT is well under 2 KB; refuse to parse megabytes
MAX_JTI_CHARS = 256  # bounds the replay store's row size


class ReplayGuard(Protocol):
    """Where accepted `jti`s are remembered: shared by every worker and replica (see `store.SeenTokens`)."""

    async def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool: ...


@dataclass(frozen=True)
class VerifiedClient:
    """Who called: safe to log (`iss`, `tenant`, `jti`) and to authorise on (`client.fhir_servers`)."""

    iss: str
    client: TrustedClient
    jti: str
    tenant: str | None


class JwtVerifier:
    """Checks bearer JWTs from the configured clients; one instance per process, shared by all requests."""

    def __init__(
        self,
        clients: list[TrustedClient],
        http: httpx.AsyncClient,
        *,
        algorithms: Sequence[str] = ("ES384", "RS384"),
        leeway_s: int = 30,
        max_lifetime_s: int = 3600,
        jwks_ttl_s: int = 300,
        refresh_interval_s: float = 30.0,
        replay: ReplayGuard,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unsupported = [alg for alg in algorithms if alg not in KEY_SHAPES]
        if unsupported or not algorithms:
            raise ValueError(f"only asymmetric signature algorithms can be allowed, not {unsupported}")
        self._clients = {client.iss: client for client in clients}
        if len(self._clients) != len(clients):
            raise ValueError("duplicate iss among trusted clients")
        self._algorithms = frozenset(algorithms)
        self._leeway_s = leeway_s
        self._max_lifetime_s = max_lifetime_s
        self._clock = clock
        self._jwks = JwksCache(http, ttl_s=jwks_ttl_s, refresh_interval_s=refresh_interval_s, clock=clock)
        self._replay = replay

    def fhir_servers(self) -> frozenset[str]:
        """Every FHIR base URL some trusted client may send: what the capture app may be launched against."""
        return frozenset(server for client in self._clients.values() for server in client.fhir_servers)

    async def verify(self, authorization_header: str | None, audience: str) -> VerifiedClient:
        """The verified caller, or AuthError. `audience`: the public URL of the endpoint being called."""
        token = _bearer_token(authorization_header)
        header = self._header(token)
        client = self._client(token)
        key = await self._key(client, header)
        claims = _decode(token, key, header["alg"], client.iss, audience)
        self._check_times(claims)
        tenant = _tenant(claims, client)
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise AuthError("bad jti")
        if not await self._replay.first_use(client.iss, jti, claims["exp"] + self._leeway_s, self._clock()):
            raise AuthError("replayed jti")
        return VerifiedClient(iss=client.iss, client=client, jti=jti, tenant=tenant)

    def _header(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        alg = header.get("alg")
        if alg not in self._algorithms:  # `none` and HS* are never in it (see __init__)
            raise AuthError(f"alg not allowed {clip(alg)}")
        if header.get("typ") != "JWT":
            raise AuthError("typ not JWT")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise AuthError("missing kid")
        if "crit" in header:
            raise AuthError("crit not supported")
        return header

    def _client(self, token: str) -> TrustedClient:
        """The trusted client named by the (still unverified) `iss`; the signature check comes next."""
        try:
            iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        if iss is None:
            raise AuthError("missing claim iss")
        client = self._clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise AuthError(f"unknown iss {clip(iss)}")
        return client

    async def _key(self, client: TrustedClient, header: dict[str, Any]) -> jwt.PyJWK:
        """Inline keys are pinned; otherwise the allowlisted jku, else the configured jwks_url."""
        jku, kid = header.get("jku"), header["kid"]
        if jku is not None and jku not in client.jku_allowlist:
            raise AuthError("jku not allowlisted")  # never fetched: the header is attacker-controlled
        url = None if client.jwks is not None else jku or client.jwks_url
        if url is None:
            candidates = find_jwk(client.jwks or {}, kid)
        else:
            candidates = find_jwk(await self._jwks.get(url), kid)
            if not candidates:  # maybe rotated: refetch, rate-limited per URL
                candidates = find_jwk(await self._jwks.refresh(url), kid)
        if not candidates:
            raise AuthError(f"unknown kid {clip(kid)}")
        return key_for(candidates, header["alg"])

    def _check_times(self, claims: dict[str, Any]) -> None:
        for name in ("exp", "iat", "nbf"):
            value = claims.get(name)
            if name in claims and not _is_number(value):
                raise AuthError(f"bad {name}")
        now, leeway = self._clock(), self._leeway_s
        if claims["exp"] <= now - leeway:
            raise AuthError("expired")
        if claims["iat"] > now + leeway:
            raise AuthError("iat in future")
        if claims["exp"] - claims["iat"] > self._max_lifetime_s:
            raise AuthError("lifetime too long")
        if "nbf" in claims and claims["nbf"] > now + leeway:
            raise AuthError("not yet valid")


def _bearer_token(authorization_header: str | None) -> str:
    if not authorization_header:
        raise AuthError("missing authorization")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("not bearer")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("token too large")
    if token.count(".") != 2:  # also refuses 5-part JWE
        raise AuthError("malformed token")
    return token


def _decode(token: str, key: jwt.PyJWK, alg: str, iss: str, audience: str) -> dict[str, Any]:
    """Signature, required claims, iss and aud, by PyJWT; times are checked by us against our clock."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=iss,
            options={
                "require": REQUIRED_CLAIMS,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.InvalidSignatureError:
        raise AuthError("signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"missing claim {exc.claim}") from None
    except jwt.InvalidAudienceError:
        raise AuthError("aud mismatch") from None
    except jwt.InvalidIssuerError:
        raise AuthError("iss mismatch") from None
    except jwt.InvalidKeyError:
        raise AuthError("weak key") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token ({type(exc).__name__})") from None


def _tenant(claims: dict[str, Any], client: TrustedClient) -> str | None:
    tenant = claims.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise AuthError("bad tenant")
    if client.tenant is not None and tenant != client.tenant:
        raise AuthError("tenant mismatch")
    return tenant


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
