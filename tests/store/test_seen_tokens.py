"""JWT replay protection in the shared database: a token is accepted once across every worker and replica."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import event

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


def transactions(database: Database) -> list[int]:
    """A counter of the transactions the store begins, read as `count[0]`."""
    count = [0]

    def began(_connection: object) -> None:
        count[0] += 1

    event.listen(database.engine.sync_engine, "begin", began)
    return count


async def test_concurrent_first_uses_share_one_commit(database_url: str) -> None:
    """Group commit: the calls that arrive while one write is on its way are recorded together, so a busy
    worker pays one transaction for many tokens instead of one each (each still answered only once its row
    is committed)."""
    database = await migrated(database_url)
    tokens = SeenTokens(database)
    began = transactions(database)
    accepted = await asyncio.gather(*(tokens.first_use(ISS, f"many-{i}", NOW + 60, NOW) for i in range(16)))
    assert accepted == [True] * 16
    assert began[0] <= 2
    replayed = await asyncio.gather(*(tokens.first_use(ISS, f"many-{i}", NOW + 60, NOW) for i in range(16)))
    assert replayed == [False] * 16
    await database.close()


async def test_one_token_twice_at_once_in_one_process_is_accepted_once(database_url: str) -> None:
    database = await migrated(database_url)
    tokens = SeenTokens(database)
    for round_ in range(5):
        results = await asyncio.gather(
            *(tokens.first_use(ISS, f"twice-{round_}", NOW + 60, NOW) for _ in "ab")
        )
        assert sorted(results) == [False, True]
    await database.close()


RECORD = """
import asyncio, sys
from cds_service.store import Database, SeenTokens
async def main():
    database = Database(sys.argv[1])
    await database.migrate()
    iss, expires_at, now = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    print(await SeenTokens(database).first_use(iss, "restart-1", expires_at, now), flush=True)
    sys.stdin.read()  # answered: now wait to be killed, without closing anything
asyncio.run(main())
"""


async def test_a_token_accepted_before_a_kill_is_refused_after_the_restart(database_url: str) -> None:
    """Durable before the answer: the process that accepted the token dies by SIGKILL straight after saying
    so, and the next process still refuses the token."""
    verdicts = []
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RECORD,
            database_url,
            ISS,
            str(NOW + 600),
            str(NOW),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        verdicts.append((await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip())
        process.kill()
        await process.wait()
    assert verdicts == ["True", "False"]
