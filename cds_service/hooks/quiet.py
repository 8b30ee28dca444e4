"""Quiet when acknowledged (V2-30): a card a clinician overrode is not shown again for the same patient and
rule for `feedback.snoozeDays` unless its unmet-criteria list changes; and order-sign does not repeat a card
that order-select showed for the same draft, with the same unmet list, within REPEAT_WINDOW.

The unmet list is read from the card's machine-readable checklist (V2-27), never from its wording. The store
knows the patient and the drafts only as keyed hashes. If it cannot be read, every card is shown: quiet is a
courtesy to the clinician, never a reason to withhold advice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..plans.canonical import DRAFT_EXTENSION
from ..plans.cards import unmet_of_card
from ..record import Entry
from ..store import PatientKeys, QuietCards, ShownCard
from ..types import JSONObject
from .intake import ParsedRequest

log = logging.getLogger("cds_service.hooks")

SNOOZE_DAYS = "feedback.snoozeDays"  # the Library parameter; a rule set without it never snoozes
REPEAT_WINDOW = timedelta(minutes=60)


def unmet_signature(card: JSONObject) -> tuple[str, ...]:
    """The ids, in checklist order and parts included, of the card's criteria not met or not documented."""
    return tuple(code for criterion, parts in unmet_of_card(card) for code in (criterion, *parts))


def _rule(card: JSONObject) -> str:
    rule: str = card["source"]["topic"]["code"]
    return rule


def snooze_days(params: Mapping[str, Any]) -> int:
    return int(params.get(SNOOZE_DAYS, 0))


class CardQuieter:
    """Decides which cards stay quiet, and turns overrides into snoozes; one per app, shared by requests."""

    def __init__(self, store: QuietCards, keys: PatientKeys) -> None:
        self.store = store
        self._keys = keys

    async def shown(
        self,
        cards: list[JSONObject],
        request: ParsedRequest,
        drafts: Sequence[Entry],
        caller: str,
        now: datetime,
        params: Mapping[str, Any],
    ) -> list[JSONObject]:
        """The cards to show, in order, and remembered as shown. `caller` is the EHR (issuer and tenant) whose
        patient ids these are; `drafts` are the draft orders in scope (order-select: the selected ones)."""
        if not cards:
            return cards
        hook = request.envelope.hook
        patient = self._keys.patient(caller, request.context.patientId)
        draft_keys = frozenset(self._keys.draft(patient, draft.reference) for draft in drafts)
        days = snooze_days(params)
        try:
            recent = await self.store.recent(
                patient,
                {_rule(card) for card in cards},
                snoozed_since=now - timedelta(days=days) if days > 0 else None,
                shown_at="order-select" if hook == "order-sign" and draft_keys else None,
                shown_since=now - REPEAT_WINDOW,
            )
        except Exception as error:
            log.error("quiet cards not checked, all %d shown: %s", len(cards), type(error).__name__)
            return cards
        show = []
        remembered = []
        for card in cards:
            rule, unmet = _rule(card), unmet_signature(card)
            about = (card.get("extension") or {}).get(DRAFT_EXTENSION)
            keys = frozenset({self._keys.draft(patient, about)}) if isinstance(about, str) else draft_keys
            # a red flag is never snoozed: a new cauda equina must not wait out an old override
            snoozed = card["indicator"] != "critical" and recent.snoozed.get(rule) == unmet
            repeated = any(
                earlier.rule_id == rule and earlier.unmet == unmet and earlier.drafts & keys
                for earlier in recent.shown
            )
            if not (snoozed or repeated):
                show.append(card)
                remembered.append(ShownCard(card["uuid"], hook, patient, rule, unmet, keys))
        self.store.remember(remembered, now)
        return show

    async def acknowledge(self, overridden: Sequence[str], now: datetime, params: Mapping[str, Any]) -> None:
        """Snooze the rules of the overridden cards (uuids) for their patients; forget expired snoozes."""
        days = snooze_days(params)
        if days <= 0 or not overridden:
            return
        await self.store.snooze(overridden, now)
        await self.store.forget_snoozes_before(now - timedelta(days=days))
