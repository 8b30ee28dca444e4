"""Issued cards: uuid → rule id for feedback attribution, no patient data, forgotten after retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from cds_service.store import Database, IssuedCards

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
    await cards.record("postfusion-pain-order-sign", [card("u1", "REV-NOT-MET"), card("u2", "REV-ODDS")], T)
    await cards.record("postfusion-pain-order-sign", [card("u1", "REV-NOT-MET")], T)  # a retry: ignored
    await cards.record("postfusion-pain-patient-view", [], T)
    assert await cards.rules_of(["u1", "u2", "unknown"]) == {"u1": "REV-NOT-MET", "u2": "REV-ODDS"}
    assert await cards.forget_before(T + timedelta(seconds=1)) == 2
    assert await cards.rules_of(["u1"]) == {}
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
    }
