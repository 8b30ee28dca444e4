"""JWT replay protection in the shared database: a token is accepted once across every worker and replica."""

from __future__ import annotations

import asyncio

from cds_service.store import Database, SeenTokens
from cds_service.store.tokens import PURGE_EVERY

ISS = "https://ehr.example.org"
NOW = 1_800_000_000.0


async def migrated(url: str) -> Database:
    database = Database(url)
    await database.migrate()
    return database


async def test_a_token_is_accepted_once_until_it_expires(database_url: str) -> None:
    database = await migrated(database_url)
    tokens = SeenTokens(database)
    assert await tokens.first_use(ISS, "jti-1", NOW + 300, NOW)
    assert not await tokens.first_use(ISS, "jti-1", NOW + 300, NOW + 10)
    assert await tokens.first_use("https://other.example.org", "jti-1", NOW + 300, NOW)  # per issuer
    assert await tokens.first_use(ISS, "jti-1", NOW + 900, NOW + 301)  # expired entry taken over
    assert not await tokens.first_use(ISS, "jti-1", NOW + 900, NOW + 302)
    await database.close()


async def test_two_replicas_racing_with_one_token_accept_it_once(database_url: str) -> None:
    replica_a, replica_b = await migrated(database_url), Database(database_url)
    guards = [SeenTokens(replica_a), SeenTokens(replica_b)]
    for round_ in range(20):
        results = await asyncio.gather(
            *(guard.first_use(ISS, f"race-{round_}", NOW + 60, NOW) for guard in guards)
        )
        assert sorted(results) == [False, True]
    await replica_a.close()
    await replica_b.close()


async def test_expired_entries_are_purged(database_url: str) -> None:
    database = await migrated(database_url)
    tokens = SeenTokens(database)
    for index in range(PURGE_EVERY - 1):
        await tokens.first_use(ISS, f"old-{index}", NOW + 1, NOW)
    await tokens.first_use(ISS, "late", NOW + 600, NOW + 120)  # the PURGE_EVERY-th call, after expiry
    async with database.engine.connect() as connection:
        remaining = (await connection.exec_driver_sql("SELECT jti FROM seen_token")).scalars().all()
    assert remaining == ["late"]
    await database.close()
