"""The cards we issued: uuid → rule id and indicator, read by feedback analytics.

The EHR's feedback names only a card uuid; remembering which rule issued it lets acceptance and override
rates be reported per rule. No patient data: the uuid is random, the rest is our own rule catalogue.

Written behind: a hook call only appends to a buffer, and a background task inserts the buffer in one
statement every FLUSH_INTERVAL_S. A commit per call made every call wait for the database (with SQLite, for
its single writer lock) and cut throughput by two thirds; feedback arrives after a clinician has read the
card, seconds later. A process flushes before it looks cards up, and at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select

from .database import OUTAGES, Database
from .schema import IssuedCardRow

log = logging.getLogger("cds_service.store")

FLUSH_INTERVAL_S = 0.5
PURGE_EVERY = 1000  # flushes between deletions of cards older than the retention period
MAX_PENDING = 100_000  # rows kept while the database is unreachable; older ones are dropped beyond that


class IssuedCards:
    def __init__(self, database: Database, retention: timedelta) -> None:
        self._db = database
        self._retention = retention
        self._pending: list[dict[str, object]] = []
        self._flushes = 0

    def remember(self, service_id: str, cards: Iterable[dict[str, Any]], issued_at: datetime) -> None:
        """Remember the cards of one response (written by the next flush)."""
        self._pending.extend(
            {
                "card_uuid": card["uuid"],
                "service_id": service_id,
                "rule_id": card["source"]["topic"]["code"],
                "indicator": card["indicator"],
                "issued_at": issued_at,
            }
            for card in cards
        )

    async def flush(self) -> None:
        """Insert what is buffered; on failure keep it (bounded) for the next attempt."""
        rows, self._pending = self._pending, []
        if not rows:
            return
        try:
            await self._db.insert_new(IssuedCardRow, rows)
        except OUTAGES:  # the database is away: keep them for the next attempt
            self._pending = [*rows, *self._pending][-MAX_PENDING:]
            raise
        except Exception as error:  # rows it refuses would be refused again forever: drop them, say so
            log.error("dropped %d issued cards the database refused: %s", len(rows), type(error).__name__)
            raise
        self._flushes += 1
        if self._flushes % PURGE_EVERY == 0:
            await self.forget_before(datetime.now(UTC) - self._retention)

    async def write_behind(self) -> None:
        """The background task: flush every FLUSH_INTERVAL_S until cancelled."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except Exception as error:
                log.error(
                    "issued cards not written yet (%d pending): %s", len(self._pending), type(error).__name__
                )

    async def rules_of(self, card_uuids: Iterable[str]) -> dict[str, str]:
        """card uuid → rule id, for the uuids we issued."""
        wanted = list(set(card_uuids))
        if not wanted:
            return {}
        await self.flush()
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
        return cast(CursorResult[Any], result).rowcount
