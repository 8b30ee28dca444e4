"""Turn an applicable card specification into a CDS Hooks card: text from templates, the checklist,
suggestions the clinician can accept, links and override reasons."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from ..protocol.request import HookContext
from ..protocol.response import SUMMARY_MAX, Action, Card, Coding, Link, Source, Suggestion
from ..record import Entry
from .evaluation import Evaluation
from .kleene import is_true
from .model import CardSpec, Plan, SuggestionSpec

PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
STATES = {True: ("x", "met"), False: (" ", "not met"), None: (" ", "not documented")}


def display(value: Any) -> str:
    """A fact's value as a clinician reads it."""
    if value is None:
        return "not documented"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    if isinstance(value, Entry):
        return value.label
    if isinstance(value, list):
        if not value:
            return "none"
        separator = "," if all(isinstance(item, str) for item in value) else ", "  # ID lists: C1,C2
        return separator.join(display(item) for item in value)
    return str(value)


def duration(days: int) -> str:
    """A number of days as a clinician says it: 365 is "12 months", 42 is "6 weeks", 10 is "10 days"."""
    months = round(days / MONTH_DAYS)
    if days >= 56 and abs(days - months * MONTH_DAYS) <= 3:
        return f"{months} months"
    if days >= 14 and days % 7 == 0:
        return f"{days // 7} weeks"
    return "1 day" if days == 1 else f"{days} days"


MONTH_DAYS = 365.25 / 12


def parameter_text(name: str, value: Any) -> str:
    """A parameter in card text: day counts (names with `Days`) as durations, anything else as a value."""
    if "Days" in name and isinstance(value, int) and not isinstance(value, bool):
        return duration(value)
    return display(value)


def fill_parameters(template: str, params: Mapping[str, Any]) -> str:
    """A criterion label with the site's thresholds filled in, so it says what the rule checks."""
    return PLACEHOLDER.sub(lambda match: parameter_text(match.group(1), params.get(match.group(1))), template)


EVIDENCE_SHOWN = 3


def _cite(references: frozenset[str]) -> str:
    """The first few record references, so a long series of sessions does not drown the checklist."""
    shown = sorted(references)
    more = len(shown) - EVIDENCE_SHOWN
    return ", ".join(shown[:EVIDENCE_SHOWN]) + (f" and {more} more" if more > 0 else "")


def checklist(plan: Plan, evaluation: Evaluation) -> str:
    """The plan's criteria as a GitHub-flavoured task list: state, evidence and source of each."""
    lines = []
    for criterion in plan.criteria:
        outcome, required = evaluation.assess(criterion)
        mark, state = STATES[outcome.value]
        if not required:
            mark, state = "x" if outcome.value else " ", f"{state}, not required here"
        line = (
            f"- [{mark}] **{criterion.code}** {fill_parameters(criterion.label, evaluation.params)}: {state}"
        )
        if outcome.value is None and outcome.missing:
            missing = sorted(evaluation.facts[name].description or name for name in outcome.missing)
            line += f" (missing: {'; '.join(missing)})"
        if outcome.evidence:
            line += f" (evidence: {_cite(outcome.evidence)})"
        if criterion.citation:
            line += f". Source: {criterion.citation}"
        lines.append(line)
    return "\n".join(lines)


def _draft_label(draft: Entry | None) -> str:
    return draft.label if draft is not None else "the order"


def fill(template: str, plan: Plan, evaluation: Evaluation) -> str:
    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "unmet":
            return ",".join(evaluation.unmet())
        if name == "checklist":
            return checklist(plan, evaluation)
        if name == "draft":
            return _draft_label(evaluation.draft)
        if name in evaluation.facts:
            return display(evaluation.fact(name))
        return parameter_text(name, evaluation.params.get(name))

    return PLACEHOLDER.sub(value_of, template)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _created_resource(spec: SuggestionSpec, context: HookContext) -> dict[str, Any]:
    activity = spec.activity or {}
    resource: dict[str, Any] = {
        "resourceType": activity.get("kind", "ServiceRequest"),
        "status": "draft",
        "intent": activity.get("intent", "proposal"),
        "code": activity.get("code"),
        "subject": {"reference": f"Patient/{context.patientId}"},
    }
    if activity.get("description"):
        resource["note"] = [{"text": activity["description"]}]
    if context.encounterId:
        resource["encounter"] = {"reference": f"Encounter/{context.encounterId}"}
    if context.userId.split("/")[0] in {"Practitioner", "PractitionerRole"}:
        resource["requester"] = {"reference": context.userId}
    return resource


def _suggestion(spec: SuggestionSpec, evaluation: Evaluation, context: HookContext) -> Suggestion | None:
    if not all(is_true(condition(None)) for condition in spec.conditions):
        return None
    if spec.kind == "remove":
        if evaluation.draft is None:
            return None
        action = Action(
            type="delete",
            description=f"Remove the draft order: {_draft_label(evaluation.draft)}",
            resourceId=evaluation.draft.reference,
        )
    else:
        action = Action(type="create", description=spec.label, resource=_created_resource(spec, context))
    return Suggestion(
        label=spec.label, uuid=str(uuid.uuid4()), isRecommended=spec.recommended or None, actions=[action]
    )


def build_card(
    spec: CardSpec, plan: Plan, evaluation: Evaluation, context: HookContext, source_url: str | None
) -> Card:
    suggestions = [s for s in (_suggestion(item, evaluation, context) for item in spec.suggestions) if s]
    return Card(
        uuid=str(uuid.uuid4()),
        summary=_shorten(fill(spec.summary, plan, evaluation)),
        detail=fill(spec.detail, plan, evaluation) if spec.detail else None,
        indicator=spec.indicator,
        source=Source(
            label=plan.source_label,
            url=source_url,
            topic=Coding(system=spec.topic_system, code=spec.rule_id, display=spec.topic_display),
        ),
        suggestions=suggestions,
        selectionBehavior="any" if suggestions else None,
        overrideReasons=[Coding(**reason) for reason in spec.override_reasons],
        links=[Link(label=label, url=url) for label, url in spec.links],
    )
