"""Feedback checked against the card it names, before anything of it is stored.

A card is answered at the feedback endpoint of the service that issued it, with suggestions and an override
reason that card offered (CDS Hooks: `acceptedSuggestions` are the card's `suggestion.uuid`s, and the reason
is "selected by the end user" from the card's `overrideReasons`; the display is the EHR's and not compared).
Feedback on a card we have no record of is not checked here: it is stored unattributed (see the README).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import Issue
from ..protocol.feedback import Feedback

# The latest outcomeTimestamp of a card is the outcome that counts; one far in the future would pin it. A day
# allows any EHR clock, including one that labels local time as UTC, and still refuses that.
FUTURE_TOLERANCE = timedelta(days=1)


@dataclass(frozen=True)
class IssuedCard:
    """What we issued under a card uuid. The offers are None for a card issued before revision 0004, which
    did not record them: its suggestions and reasons are then not checked (we cannot tell)."""

    service_id: str
    rule_id: str
    suggestions: frozenset[str] | None
    override_reasons: frozenset[tuple[str, str]] | None


def feedback_problems(
    service_id: str, items: Sequence[Feedback], issued: Mapping[str, IssuedCard], received_at: datetime
) -> list[Issue]:
    """Everything wrong with a submission to `service_id`'s feedback endpoint, each at its place."""
    issues: list[Issue] = []
    for index, item in enumerate(items):
        where = f"feedback[{index}]"
        if item.outcomeTimestamp > received_at + FUTURE_TOLERANCE:
            issues.append(
                Issue("outcomeTimestamp is more than a day in the future", f"{where}.outcomeTimestamp")
            )
        card = issued.get(item.card)
        if card is None:
            continue
        if card.service_id != service_id:
            issues.append(
                Issue(
                    f"this card was issued by CDS service '{card.service_id}': send its feedback to "
                    f"/cds-services/{card.service_id}/feedback",
                    f"{where}.card",
                    "business-rule",
                )
            )
            continue
        issues += _offer_problems(where, item, card)
    return issues


def _offer_problems(where: str, item: Feedback, card: IssuedCard) -> list[Issue]:
    issues = [
        Issue(
            "the card offered no suggestion with this id",
            f"{where}.acceptedSuggestions[{n}].id",
            "business-rule",
        )
        for n, suggestion in enumerate(item.acceptedSuggestions)
        if card.suggestions is not None and suggestion.id not in card.suggestions
    ]
    reason = item.overrideReason.reason if item.overrideReason else None
    if reason is None or card.override_reasons is None:
        return issues
    if (reason.system, reason.code) not in card.override_reasons:
        offered = ", ".join(sorted(f"{system}|{code}" for system, code in card.override_reasons)) or "none"
        issues.append(
            Issue(
                f"the card did not offer this override reason (offered: {offered}); a reason of the "
                "clinician's own goes in userComment",
                f"{where}.overrideReason.reason",
                "code-invalid",
            )
        )
    return issues
