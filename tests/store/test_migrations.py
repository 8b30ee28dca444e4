"""Alembic owns the schema: migrations build exactly the tables the code uses, on SQLite and PostgreSQL,
adopt a store made before migrations existed, and let replicas that start together migrate safely."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from cds_service.store import Database, FeedbackRow, head_revision
from cds_service.store.schema import Base

HEAD = head_revision()


async def test_migrations_build_exactly_the_declared_tables(database_url: str) -> None:
    database = Database(database_url)
    await database.migrate()
    async with database.engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    await database.close()
    assert differences == []


async def test_migrating_again_changes_nothing(database_url: str) -> None:
    database = Database(database_url)
    await database.migrate()
    await database.migrate()
    assert await database.revision() == HEAD
    await database.close()


async def test_a_store_from_before_migrations_is_adopted_with_its_rows(database_url: str) -> None:
    database = Database(database_url)
    async with database.engine.begin() as connection:  # what the service did before Alembic: create_all
        await connection.run_sync(lambda sync: FeedbackRow.__table__.create(sync))
    async with database.sessions.begin() as session:
        session.add(
            FeedbackRow(
                dedupe_key="k" * 64,
                service_id="postfusion-pain-order-sign",
                card_uuid="c1",
                outcome="accepted",
                accepted_suggestions=[],
                outcome_timestamp=datetime(2026, 1, 1, tzinfo=UTC),
                received_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    await database.migrate()
    assert await database.revision() == HEAD
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FeedbackRow)) == 1
    await database.close()


async def test_replicas_starting_together_all_migrate(database_url: str) -> None:
    """Four processes' worth of engines upgrade the same empty database at once; on PostgreSQL the advisory
    lock serialises them, so none fails on a table another one created."""
    if not database_url.startswith("postgresql"):
        return  # SQLite is one host: `serve` upgrades once before starting its workers
    replicas = [Database(database_url) for _ in range(4)]
    await asyncio.gather(*(replica.migrate() for replica in replicas))
    assert {await replica.revision() for replica in replicas} == {HEAD}
    await asyncio.gather(*(replica.close() for replica in replicas))
