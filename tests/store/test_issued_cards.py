"""Issued cards: uuid → rule id for feedback attribution, no patient data, forgotten after retention."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from cds_service.store import Database, IssuedCards
from cds_service.store.issued_cards import FLUSH_INTERVAL_S

from support.issued import rules_of
from support.waiting import wait_for_async

T = datetime(2026, 11, 1, 12, tzinfo=UTC)


def card(uuid: str, rule: str, indicator: str = "warning") -> dict:
    return {
        "uuid": uuid,
        "summary": "…",
        "indicator": indicator,
        "source": {"label": "x", "topic": {"code": rule}},
    }


async def test_cards_are_remembered_by_uuid_and_rule(database_url: str) -> None:
    database = Database(database_url)
    await database.migrate()
    cards = IssuedCards(database, timedelta(days=30))
    cards.remember("postfusion-pain-order-sign", [card("u1", "REV-NOT-MET"), card("u2", "REV-ODDS")], T)
    await cards.flush()
    cards.remember("postfusion-pain-order-sign", [card("u1", "REV-NOT-MET")], T)  # a retry: ignored
    cards.remember("postfusion-pain-patient-view", [], T)
    assert await rules_of(cards, ["u1", "u2", "unknown"]) == {"u1": "REV-NOT-MET", "u2": "REV-ODDS"}
    assert await cards.forget_before(T + timedelta(seconds=1)) == 2
    assert await rules_of(cards, ["u1"]) == {}
    await database.close()


async def test_no_column_can_hold_patient_data(database_url: str) -> None:
    database = Database(database_url)
    await database.migrate()
    async with database.engine.connect() as connection:
        columns = await connection.run_sync(lambda sync: inspect(sync).get_columns("issued_card"))
    await database.close()
    assert {column["name"] for column in columns} == {
        "card_uuid",
        "service_id",
        "rule_id",
        "indicator",
        "issued_at",
        "suggestions",  # the card's suggestion uuids: random
        "override_reasons",  # the card's reason codes: our own catalogue
    }


async def test_cards_are_written_behind_within_the_flush_interval(database_url: str) -> None:
    """A hook call does not wait for the database: the background task writes the cards soon after."""
    database = Database(database_url)
    await database.migrate()
    cards = IssuedCards(database, timedelta(days=30))
    writer = asyncio.create_task(cards.write_behind())
    cards.remember("postfusion-pain-order-sign", [card("u3", "HW-NOT-SUPPORTED")], T)
    other_process = IssuedCards(database, timedelta(days=30))  # sees only what reached the database
    assert await rules_of(other_process, ["u3"]) == {}
    found = await wait_for_async(
        lambda: rules_of(other_process, ["u3"]), timeout=FLUSH_INTERVAL_S * 3, what="card u3 in the database"
    )
    assert found == {"u3": "HW-NOT-SUPPORTED"}
    writer.cancel()
    await database.close()


async def test_cards_wait_for_an_unreachable_database(tmp_path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}")
    cards = IssuedCards(database, timedelta(days=30))
    cards.remember("postfusion-pain-order-sign", [card("u4", "REV-ODDS")], T)
    with pytest.raises(OperationalError):  # no tables yet: the insert fails
        await cards.flush()
    await database.migrate()
    assert await rules_of(cards, ["u4"]) == {"u4": "REV-ODDS"}  # kept, written by the next flush
    await database.close()


async def test_one_response_of_thousands_of_cards_is_written_whole(database_url: str) -> None:
    """The attack (#17, 8): one order-sign of 3,500 drafts gave 7,000 cards, one INSERT of 35,000 parameters
    that asyncpg refuses (its limit is 32,767); the rows went back to the buffer and every later flush
    failed the same way. They are written in chunks, in one transaction."""
    database = Database(database_url)
    await database.migrate()
    cards = IssuedCards(database, timedelta(days=30))
    many = [card(f"bulk-{index}", "HW-NOT-SUPPORTED") for index in range(7_000)]
    cards.remember("postfusion-pain-order-sign", many, T)
    await cards.flush()
    found = await rules_of(IssuedCards(database, timedelta(days=30)), [c["uuid"] for c in many])
    assert len(found) == 7_000
    cards.remember("postfusion-pain-order-sign", [card("after", "REV-MET")], T)
    await cards.flush()  # the buffer is not jammed
    assert await rules_of(cards, ["after"]) == {"after": "REV-MET"}
    await database.close()


async def test_rows_the_database_refuses_are_dropped_not_retried_forever(database_url: str) -> None:
    """A rule id longer than its column is refused by PostgreSQL (SQLite keeps it); such a batch would fail
    every later flush, so it is dropped with a log line and the next cards are written."""
    database = Database(database_url)
    await database.migrate()
    cards = IssuedCards(database, timedelta(days=30))
    cards.remember("postfusion-pain-order-sign", [card("poison", "R" * 100)], T)
    with contextlib.suppress(Exception):
        await cards.flush()
    cards.remember("postfusion-pain-order-sign", [card("next", "REV-MET")], T)
    await cards.flush()
    assert await rules_of(cards, ["next"]) == {"next": "REV-MET"}
    await database.close()
