"""Quiet when acknowledged (V2-30), the remembering half: which cards a keyed patient was shown, and which of
their rules a clinician overrode. Which cards stay quiet is decided above, in `hooks.quiet`.

Cards shown are written behind like issued cards (a hook call must not wait for a commit). A lookup also reads
this process's buffer, so order-select and order-sign agree at once on one replica, and across replicas once
the buffer is flushed (every FLUSH_INTERVAL_S). Overrides are written when their feedback arrives.

Not journaled like issued cards: a shown card lost in a crash only makes a card show again (never hides
one), and its rows carry patient keys, better not copied to a local disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select

from .database import OUTAGES, Database
from .issued_cards import FLUSH_INTERVAL_S, MAX_PENDING, PURGE_EVERY
from .schema import ShownCardRow, SnoozeRow

log = logging.getLogger("cds_service.store")

RETENTION = timedelta(days=7)  # a shown card: ample for its feedback to arrive, short for a patient's trace


@dataclass(frozen=True, slots=True)
class ShownCard:
    """A card as the quiet rules compare it: whose (keyed), its rule, what it said was unmet, which drafts."""

    card_uuid: str
    hook: str
    patient_key: str
    rule_id: str
    unmet: tuple[str, ...]
    drafts: frozenset[str]


@dataclass(frozen=True, slots=True)
class Recent:
    """What the store knows of a patient's rules: the unmet lists overridden, and the cards lately shown."""

    snoozed: dict[str, tuple[str, ...]]
    shown: list[ShownCard]


def _card(row: ShownCardRow) -> ShownCard:
    return ShownCard(
        row.card_uuid, row.hook, row.patient_key, row.rule_id, tuple(row.unmet), frozenset(row.drafts)
    )


class QuietCards:
    def __init__(self, database: Database, retention: timedelta = RETENTION) -> None:
        self._db = database
        self._retention = retention
        self._pending: list[tuple[ShownCard, datetime]] = []
        self._flushes = 0

    def remember(self, cards: Iterable[ShownCard], issued_at: datetime) -> None:
        """Remember the cards one response showed (written by the next flush)."""
        self._pending.extend((card, issued_at) for card in cards)

    async def flush(self) -> None:
        """Insert what is buffered. Rows leave the buffer only once committed, so a lookup meanwhile still
        finds them; on failure they stay (bounded) for the next attempt."""
        rows = list(self._pending)
        if not rows:
            return
        values = [
            {
                "card_uuid": card.card_uuid,
                "hook": card.hook,
                "patient_key": card.patient_key,
                "rule_id": card.rule_id,
                "unmet": list(card.unmet),
                "drafts": sorted(card.drafts),
                "issued_at": issued_at,
            }
            for card, issued_at in rows
        ]
        try:
            await self._db.insert_new(ShownCardRow, values)
        except OUTAGES:  # the database is away: they stay for the next attempt
            del self._pending[: max(0, len(self._pending) - MAX_PENDING)]
            raise
        except Exception as error:  # rows it refuses would be refused again forever: drop them, say so
            del self._pending[: len(rows)]
            log.error("dropped %d shown cards the database refused: %s", len(rows), type(error).__name__)
            raise
        del self._pending[: len(rows)]
        self._flushes += 1
        if self._flushes % PURGE_EVERY == 0:
            await self.forget_shown_before(max(issued_at for _, issued_at in rows) - self._retention)

    async def write_behind(self) -> None:
        """The background task: flush every FLUSH_INTERVAL_S until cancelled."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except Exception as error:
                log.error(
                    "shown cards not written yet (%d pending): %s", len(self._pending), type(error).__name__
                )

    async def recent(
        self,
        patient_key: str,
        rules: set[str],
        *,
        snoozed_since: datetime | None,
        shown_at: str | None,
        shown_since: datetime,
    ) -> Recent:
        """The patient's snoozes of `rules` overridden after `snoozed_since` (None: none asked for), and the
        cards of `rules` shown at hook `shown_at` since `shown_since` (None: none asked for)."""
        snoozed: dict[str, tuple[str, ...]] = {}
        shown: dict[str, ShownCard] = {}
        if not rules or (snoozed_since is None and shown_at is None):
            return Recent(snoozed, [])
        async with self._db.sessions() as session:
            if snoozed_since is not None:
                snoozes = await session.execute(
                    select(SnoozeRow.rule_id, SnoozeRow.unmet).where(
                        SnoozeRow.patient_key == patient_key,
                        SnoozeRow.rule_id.in_(rules),
                        SnoozeRow.overridden_at > snoozed_since,
                    )
                )
                snoozed = {rule: tuple(unmet) for rule, unmet in snoozes}
            if shown_at is not None:
                rows = await session.scalars(
                    select(ShownCardRow).where(
                        ShownCardRow.patient_key == patient_key,
                        ShownCardRow.hook == shown_at,
                        ShownCardRow.rule_id.in_(rules),
                        ShownCardRow.issued_at >= shown_since,
                    )
                )
                shown = {row.card_uuid: _card(row) for row in rows}
        if shown_at is not None:
            for card, issued_at in self._pending:
                if (
                    card.patient_key == patient_key
                    and card.hook == shown_at
                    and card.rule_id in rules
                    and issued_at >= shown_since
                ):
                    shown[card.card_uuid] = card
        return Recent(snoozed, list(shown.values()))

    async def snooze(self, card_uuids: Iterable[str], overridden_at: datetime) -> int:
        """Snooze the patient and rule of each overridden card we showed, with the unmet list it had; a later
        override of the same rule wins. Returns how many (patient, rule) snoozes were written."""
        wanted = list(set(card_uuids))
        if not wanted:
            return 0
        await self.flush()
        async with self._db.sessions.begin() as session:
            rows = await session.scalars(
                select(ShownCardRow)
                .where(ShownCardRow.card_uuid.in_(wanted))
                .order_by(ShownCardRow.issued_at)
            )
            latest = {(row.patient_key, row.rule_id): row.unmet for row in rows}  # one row per key per insert
            if not latest:
                return 0
            insert = self._db.insert(SnoozeRow).values(
                [
                    {"patient_key": key, "rule_id": rule, "unmet": unmet, "overridden_at": overridden_at}
                    for (key, rule), unmet in latest.items()
                ]
            )
            await session.execute(
                insert.on_conflict_do_update(
                    index_elements=["patient_key", "rule_id"],
                    set_={"unmet": insert.excluded.unmet, "overridden_at": insert.excluded.overridden_at},
                    where=SnoozeRow.overridden_at <= insert.excluded.overridden_at,
                )
            )
        return len(latest)

    async def forget_shown_before(self, cutoff: datetime) -> int:
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(ShownCardRow).where(ShownCardRow.issued_at < cutoff))
        return cast(CursorResult[Any], result).rowcount

    async def forget_snoozes_before(self, cutoff: datetime) -> int:
        async with self._db.sessions.begin() as session:
            result = await session.execute(delete(SnoozeRow).where(SnoozeRow.overridden_at < cutoff))
        return cast(CursorResult[Any], result).rowcount
