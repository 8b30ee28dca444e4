"""Fetching and caching remote JWKS documents, with a rate limit on refreshes.

The refresh on an unknown `kid` is what makes key rotation work without a restart, and the rate limit is
what stops a flood of tokens with random kids from turning us into a request amplifier against the issuer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import AuthError

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 256 * 1024


@dataclass
class _Entry:
    jwks: dict[str, Any] | None = None
    fetched_at: float = float("-inf")  # last successful fetch
    attempted_at: float = float("-inf")  # last fetch attempt, successful or not


class JwksCache:
    """Per-URL cache: fresh for `ttl_s`; refetch at most once per `refresh_interval_s` per URL.

    Only configured URLs (a client's `jwks_url` or an allowlisted `jku`) ever reach this class. On a failed
    fetch a previously fetched document keeps being used, so an issuer's brief outage does not lock its
    users out.
    """

    def __init__(
        self, http: httpx.AsyncClient, *, ttl_s: float, refresh_interval_s: float, clock: Callable[[], float]
    ) -> None:
        self._http = http
        self._ttl_s = ttl_s
        self._refresh_interval_s = refresh_interval_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, url: str) -> dict[str, Any]:
        """The JWKS at `url`, from cache while fresh."""
        return await self._load(url, max_age=self._ttl_s)

    async def refresh(self, url: str) -> dict[str, Any]:
        """The JWKS refetched for an unknown kid, unless the URL was fetched within the refresh interval."""
        return await self._load(url, max_age=0.0)

    async def _load(self, url: str, max_age: float) -> dict[str, Any]:
        async with self._locks.setdefault(url, asyncio.Lock()):  # concurrent misses share one fetch
            entry = self._entries.setdefault(url, _Entry())
            now = self._clock()
            fresh = entry.jwks is not None and now - entry.fetched_at < max_age
            if not fresh and now - entry.attempted_at >= self._refresh_interval_s:
                entry.attempted_at = now
                try:
                    entry.jwks = await self._fetch(url)
                    entry.fetched_at = now
                except AuthError as exc:
                    log.warning("JWKS fetch from %s failed: %s", url, exc.reason)
            if entry.jwks is None:
                raise AuthError("jwks unavailable")
            return entry.jwks

    async def _fetch(self, url: str) -> dict[str, Any]:
        try:
            async with self._http.stream(
                "GET",
                url,
                headers={"Accept": "application/json"},
                timeout=FETCH_TIMEOUT_S,
                follow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise AuthError(f"jwks http {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise AuthError("jwks too large")
        except httpx.HTTPError as exc:
            raise AuthError(f"jwks fetch error {type(exc).__name__}") from exc
        try:
            jwks = json.loads(body)
        except ValueError as exc:
            raise AuthError("jwks not json") from exc
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise AuthError("jwks without keys")
        return jwks
