"""The jti replay store: remembers until expiry, prunes, and refuses rather than forgets when full."""

from __future__ import annotations

import pytest
from jwt_support import T0, FakeClock

from cds_service.auth import ReplayCache, ReplayCacheFull


def test_seen_jti_is_refused_until_it_expires() -> None:
    clock = FakeClock()
    cache = ReplayCache(clock=clock)
    assert cache.remember("j", "iss-a", T0 + 60)
    assert not cache.remember("j", "iss-a", T0 + 60)
    assert cache.remember("j", "iss-b", T0 + 60)  # jti is unique per issuer
    clock.now = T0 + 60
    assert cache.remember("j", "iss-a", T0 + 120)


def test_expired_entries_are_pruned() -> None:
    clock = FakeClock()
    cache = ReplayCache(clock=clock)
    for n in range(10):
        cache.remember(f"j{n}", "iss", T0 + n + 1)
    clock.now = T0 + 5
    cache.remember("new", "iss", T0 + 100)
    assert len(cache) == 6


def test_full_of_live_entries_refuses_new_tokens() -> None:
    clock = FakeClock()
    cache = ReplayCache(max_entries=2, clock=clock)
    cache.remember("a", "iss", T0 + 10)
    cache.remember("b", "iss", T0 + 20)
    with pytest.raises(ReplayCacheFull):
        cache.remember("c", "iss", T0 + 30)
    assert not cache.remember("a", "iss", T0 + 10)  # the live entries were kept
    clock.now = T0 + 10  # "a" expires: its slot is free again
    assert cache.remember("c", "iss", T0 + 30)
    assert not cache.remember("b", "iss", T0 + 20)
