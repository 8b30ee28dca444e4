"""What the store says a card is, for tests that check cards reached the database."""

from __future__ import annotations

from collections.abc import Iterable

from cds_service.store import IssuedCards


async def rules_of(cards: IssuedCards, card_uuids: Iterable[str]) -> dict[str, str]:
    """card uuid → rule id, for those of `card_uuids` the store has (without waiting for late ones)."""
    return {uuid: card.rule_id for uuid, card in (await cards.found(card_uuids)).items()}
