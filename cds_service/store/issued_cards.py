"""The cards we issued: uuid → rule id, indicator and what the card offered, for feedback and its analytics.

The EHR's feedback names only a card uuid; remembering which rule issued it lets acceptance and override
rates be reported per rule. No patient data: the uuid is random, the rest is our own rule catalogue.

Written behind: a hook call only appends to a buffer, and a background task inserts the buffer in one
statement every FLUSH_INTERVAL_S. A commit per call made every call wait for the database (with SQLite, for
its single writer lock) and cut throughput by two thirds; feedback arrives after a clinician has read the
card, seconds later. A process flushes before it looks cards up, and at shutdown.

Journaled (`journal.py`, CDS_CARD_JOURNAL_DIR): the rows of a response are also appended to a local file
before it is sent, and deleted once committed, so a process killed with rows in its buffer loses none: the
next process to start on the folder replays them. Without a journal they are lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, DateTime, delete, select

from .database import OUTAGES, Database
from .feedback_checks import IssuedCard
from .journal import Journal, NoJournal
from .schema import IssuedCardRow

log = logging.getLogger("cds_service.store")

FLUSH_INTERVAL_S = 0.5
PURGE_EVERY = 1000  # flushes between deletions of cards older than the retention period
MAX_PENDING = 100_000  # rows kept while the database is unreachable; older ones are dropped beyond that
RETRIED: tuple[type[BaseException], ...] = (*OUTAGES, asyncio.CancelledError)
# Feedback can beat the write-behind of the worker that issued its card (a quick click on a card another
# worker or replica answered): a card not found yet is waited for over a few flush intervals.
LATE_CARD_WAIT_S = 3 * FLUSH_INTERVAL_S
LATE_CARD_POLL_S = 0.1


class IssuedCards:
    def __init__(self, database: Database, retention: timedelta, journal: Journal | None = None) -> None:
        self._db = database
        self._retention = retention
        self._journal = journal or NoJournal()
        self._pending: list[dict[str, object]] = []
        self._flushes = 0

    def remember(self, service_id: str, cards: Iterable[dict[str, Any]], issued_at: datetime) -> None:
        """Remember the cards of one response (journaled now, written by the next flush)."""
        rows = [
            {
                "card_uuid": card["uuid"],
                "service_id": service_id,
                "rule_id": card["source"]["topic"]["code"],
                "indicator": card["indicator"],
                "issued_at": issued_at,
                "suggestions": [suggestion["uuid"] for suggestion in card.get("suggestions", ())],
                "override_reasons": [[r["system"], r["code"]] for r in card.get("overrideReasons", ())],
            }
            for card in cards
        ]
        self._pending.extend(rows)
        self._journal.append(rows)

    async def recover(self) -> None:
        """At start: take over the journaled rows of processes that stopped before writing them, and write
        them now (on failure they stay buffered, and journaled, for the next flush)."""
        self._pending.extend(_revived(row) for row in self._journal.adopt())
        try:
            await self.flush()
        except Exception as error:
            log.error("journaled issued cards not written yet: %s", type(error).__name__)

    async def flush(self) -> None:
        """Insert what is buffered; on failure keep it (bounded) for the next attempt."""
        rows, self._pending = self._pending, []
        if not rows:
            return
        # no await since taking the rows: the sealed segments hold exactly these
        sealed = self._journal.seal()
        try:
            await self._db.insert_new(IssuedCardRow, rows)
        except RETRIED:  # the database is away, or the flush was given up on: keep them for the next attempt
            self._pending = [*rows, *self._pending][-MAX_PENDING:]
            self._journal.restore(sealed)
            raise
        except Exception as error:  # rows it refuses would be refused again forever: drop them, say so
            log.error("dropped %d issued cards the database refused: %s", len(rows), type(error).__name__)
            self._journal.settle(sealed)
            raise
        self._journal.settle(sealed)
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

    async def issued(self, card_uuids: Iterable[str]) -> dict[str, IssuedCard]:
        """What we issued under each of `card_uuids` that we did. A uuid not found is looked for again until
        LATE_CARD_WAIT_S: another worker or replica may have issued it and not flushed it yet."""
        wanted = set(card_uuids)
        found = await self.found(wanted)
        deadline = time.monotonic() + LATE_CARD_WAIT_S
        while len(found) < len(wanted) and time.monotonic() < deadline:
            await asyncio.sleep(LATE_CARD_POLL_S)
            found.update(await self._issued(wanted - found.keys()))
        return found

    async def found(self, card_uuids: Iterable[str]) -> dict[str, IssuedCard]:
        """What is known now of `card_uuids`: this process's buffer flushed first, nothing waited for."""
        await self.flush()
        return await self._issued(set(card_uuids))

    async def _issued(self, card_uuids: set[str]) -> dict[str, IssuedCard]:
        if not card_uuids:
            return {}
        async with self._db.sessions() as session:
            rows = await session.scalars(select(IssuedCardRow).where(IssuedCardRow.card_uuid.in_(card_uuids)))
            return {
                row.card_uuid: IssuedCard(
                    row.service_id,
                    row.rule_id,
                    None if row.suggestions is None else frozenset(row.suggestions),
                    None
                    if row.override_reasons is None
                    else frozenset((s, c) for s, c in row.override_reasons),
                )
                for row in rows
            }

    async def forget_before(self, cutoff: datetime) -> int:
        """Drop cards issued before `cutoff` (retention); returns how many."""
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(IssuedCardRow).where(IssuedCardRow.issued_at < cutoff))
        return cast(CursorResult[Any], result).rowcount


def _revived(row: dict[str, Any]) -> dict[str, object]:
    """A journaled row as the table takes it: every column (NULL where a row journaled by an older version
    lacks it), datetimes parsed back from their ISO 8601 text."""
    return {
        column.name: (
            datetime.fromisoformat(value)
            if isinstance(column.type, DateTime) and isinstance(value := row.get(column.name), str)
            else row.get(column.name)
        )
        for column in IssuedCardRow.__table__.columns
    }
