"""Alembic owns the schema: migrations build exactly the tables the code uses, on SQLite and PostgreSQL,
adopt a store made before migrations existed, and let replicas that start together migrate safely."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text

from cds_service.protocol.feedback import Feedback
from cds_service.store import Database, FeedbackRow, IssuedCards, alembic_config, head_revision
from cds_service.store.feedback_checks import feedback_problems
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


async def test_cards_issued_before_0004_keep_their_rows_and_skip_the_offer_checks(database_url: str) -> None:
    """0004 records what each card offered (suggestion uuids, override reasons). A card issued before it has
    no such record: feedback on it is still checked for the service, but its suggestions and reasons cannot
    be, and are let through rather than refused for what we never wrote down."""
    database = Database(database_url)
    async with database.engine.begin() as connection:

        def upgrade_to_0003(sync) -> None:
            config = alembic_config()
            config.attributes["connection"] = sync
            command.upgrade(config, "0003")

        await connection.run_sync(upgrade_to_0003)
        await connection.execute(
            text(
                "INSERT INTO issued_card (card_uuid, service_id, rule_id, indicator, issued_at) "
                "VALUES ('old-card', 'postfusion-pain-order-sign', 'REV-NOT-MET', 'warning', :at)"
            ),
            {"at": datetime(2026, 10, 1, tzinfo=UTC)},
        )
    await database.migrate()
    assert await database.revision() == HEAD
    cards = IssuedCards(database, timedelta(days=730))
    old = (await cards.issued(["old-card"]))["old-card"]
    assert (old.service_id, old.rule_id, old.suggestions, old.override_reasons) == (
        "postfusion-pain-order-sign",
        "REV-NOT-MET",
        None,
        None,
    )
    item = Feedback.model_validate(
        {
            "card": "old-card",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "any-suggestion"}],
            "outcomeTimestamp": "2026-10-01T00:05:00Z",
        }
    )
    now = datetime(2026, 10, 1, 0, 6, tzinfo=UTC)
    assert feedback_problems("postfusion-pain-order-sign", [item], {"old-card": old}, now) == []
    (wrong_service,) = feedback_problems("postfusion-pain-patient-view", [item], {"old-card": old}, now)
    assert wrong_service.location == "feedback[0].card"
    await database.close()
