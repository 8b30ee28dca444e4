"""Short-term memory of accepted `jti`s, so a captured token cannot be played back while it is still valid."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable


class ReplayCacheFull(Exception):
    """Every slot holds a jti that has not expired yet; forgetting one would reopen a replay window."""


class ReplayCache:
    """In-memory (iss, jti) store, each entry kept until its token expires.

    Per process only: with several workers or replicas behind a load balancer a token replayed to another
    process is not caught, so such deployments need a shared store (e.g. Redis `SET key NX EXPIREAT exp`)
    behind the same `remember` call. Bounded: expired entries are dropped first (oldest expiry first); when
    the cache is full of live entries new tokens are refused (ReplayCacheFull) rather than forgetting live
    ones. With lifetimes capped by the verifier, size it for the peak token rate times that lifetime.
    """

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        self._max = max_entries
        self._clock = clock
        self._expiry: dict[tuple[str, str], float] = {}
        self._by_expiry: list[tuple[float, tuple[str, str]]] = []  # heap, same entries

    def __len__(self) -> int:
        return len(self._expiry)

    def remember(self, jti: str, iss: str, exp: float) -> bool:
        """Record the token; False if the same (iss, jti) was seen and has not expired yet."""
        now = self._clock()
        self._prune(now)
        key = (iss, jti)
        if key in self._expiry:
            return False
        if len(self._expiry) >= self._max:
            raise ReplayCacheFull
        self._expiry[key] = exp
        heapq.heappush(self._by_expiry, (exp, key))
        return True

    def _prune(self, now: float) -> None:
        while self._by_expiry and self._by_expiry[0][0] <= now:
            _, key = heapq.heappop(self._by_expiry)
            del self._expiry[key]
