"""The cards we issued: uuid → rule id and indicator, written with the response, read by feedback analytics.

The EHR's feedback names only a card uuid; remembering which rule issued it lets acceptance and override
rates be reported per rule. No patient data: the uuid is random, the rest is our own rule catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from .database import Database
from .schema import IssuedCardRow

PURGE_EVERY = 1000  # recorded calls between deletions of cards older than the retention period


class IssuedCards:
    def __init__(self, database: Database, retention: timedelta) -> None:
        self._db = database
        self._retention = retention
        self._calls = 0

    async def record(self, service_id: str, cards: Iterable[dict], issued_at: datetime) -> None:
        self._calls += 1
        if self._calls % PURGE_EVERY == 0:
            await self.forget_before(issued_at - self._retention)
        rows = [
            {
                "card_uuid": card["uuid"],
                "service_id": service_id,
                "rule_id": card["source"]["topic"]["code"],
                "indicator": card["indicator"],
                "issued_at": issued_at,
            }
            for card in cards
        ]
        if rows:
            async with self._db.sessions.begin() as session:
                await session.execute(self._db.insert(IssuedCardRow).values(rows).on_conflict_do_nothing())

    async def rules_of(self, card_uuids: Iterable[str]) -> dict[str, str]:
        """card uuid → rule id, for the uuids we issued."""
        wanted = list(set(card_uuids))
        if not wanted:
            return {}
        async with self._db.sessions() as session:
            rows = await session.execute(
                select(IssuedCardRow.card_uuid, IssuedCardRow.rule_id).where(
                    IssuedCardRow.card_uuid.in_(wanted)
                )
            )
            return {uuid: rule for uuid, rule in rows}

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop cards issued before `cutoff` (retention); returns how many."""
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(IssuedCardRow).where(IssuedCardRow.issued_at < cutoff))
        return result.rowcount
