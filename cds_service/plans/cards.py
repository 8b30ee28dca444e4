"""Turn an applicable card specification into a CDS Hooks card: text from templates, the checklist,
suggestions the clinician can accept, links and override reasons."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..protocol.request import HookContext
from ..protocol.response import (
    SUMMARY_MAX,
    Action,
    Card,
    Coding,
    CriterionPart,
    CriterionState,
    CriterionStatus,
    Link,
    Source,
    Suggestion,
)
from ..record import Entry
from .canonical import CRITERIA_EXTENSION, DRAFT_EXTENSION, REQUEST_CATEGORY, UNMET_STATUSES
from .describe import dates_only, describe
from .evaluation import Evaluation
from .kleene import is_true
from .model import CardSpec, Criterion, Plan, SuggestionSpec

PLACEHOLDER = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")


def display(value: Any) -> str:
    """A fact's value as a clinician reads it."""
    if value is None:
        return "not documented"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return ", ".join(display(item) for item in value) if value else "none"
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


STATUS: dict[bool | None, CriterionStatus] = {True: "met", False: "not-met", None: "not-documented"}
MARKS = {"met": "✓", "not-met": "✗", "not-documented": "?"}
STATE_WORDS = {"not-met": "not met", "not-documented": "not documented"}
UNMET_SHOWN = 3  # a summary names up to three missing items, then "+N more" (V2-25)
UNMET_SEPARATOR = "; "
EVIDENCE_SHOWN = 2  # records per checklist line: enough to check it, short enough to read
CAPTURE_LABEL = "Record the missing items"  # the SMART link to the capture app


@dataclass(frozen=True, slots=True)
class Line:
    """One criterion as assessed: its status word and the records it rests on."""

    criterion: Criterion
    status: CriterionStatus
    evidence: frozenset[str]
    missing_facts: tuple[str, ...]
    parts: tuple[tuple[str, CriterionStatus], ...]  # (code, status) of the unmet sub-items of a breakdown


def _find(evaluation: Evaluation, code: str) -> Criterion | None:
    """A sub-item of a breakdown is usually another plan's criterion (R2's C1…C7)."""
    for criteria in (evaluation.criteria, *evaluation.plan_criteria.values()):
        for criterion in criteria:
            if criterion.code == code:
                return criterion
    return None


def _status(evaluation: Evaluation, criterion: Criterion) -> CriterionStatus:
    outcome, required = evaluation.assess(criterion)
    return STATUS[outcome.value] if required else "not-required"


def lines(criteria: tuple[Criterion, ...], evaluation: Evaluation) -> list[Line]:
    result = []
    for criterion in criteria:
        outcome, _ = evaluation.assess(criterion)
        status = _status(evaluation, criterion)
        parts: list[tuple[str, CriterionStatus]] = []
        if status in UNMET_STATUSES and criterion.breakdown is not None:
            for code in criterion.breakdown(None) or ():
                sub = _find(evaluation, code)
                parts.append((code, _status(evaluation, sub) if sub is not None else "not-met"))
        missing = tuple(sorted(evaluation.facts[name].description or name for name in outcome.missing))
        result.append(Line(criterion, status, outcome.evidence, missing, tuple(parts)))
    return result


def unmet_of_card(card: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """A card's unmet criteria as its JSON extension reports them (V2-27): (id, unmet part ids), in order.
    Acceptance and the quiet-cards store read cards this way, never from the summary."""
    return [
        (item["id"], [part["id"] for part in item.get("parts") or () if part.get("status") in UNMET_STATUSES])
        for item in (card.get("extension") or {}).get(CRITERIA_EXTENSION) or ()
        if item.get("status") in UNMET_STATUSES
    ]


def criteria_extension(plan_lines: list[Line]) -> list[CriterionState]:
    """The checklist for machines (V2-27): ids and statuses in order, evidence as references."""
    return [
        CriterionState(
            id=line.criterion.code,
            status=line.status,
            evidence=sorted(line.evidence),
            parts=[CriterionPart(id=code, status=status) for code, status in line.parts],
        )
        for line in plan_lines
    ]


def _phrase(criterion: Criterion, params: Mapping[str, Any]) -> str:
    return fill_parameters(criterion.missing or criterion.label, params)


def unmet_phrases(plan_lines: list[Line], params: Mapping[str, Any]) -> str:
    """What a summary says is missing: up to three plain phrases, then "+N more" (V2-25)."""
    phrases = [_phrase(line.criterion, params) for line in plan_lines if line.status in UNMET_STATUSES]
    more = len(phrases) - UNMET_SHOWN
    return UNMET_SEPARATOR.join(phrases[:UNMET_SHOWN]) + (f" +{more} more" if more > 0 else "")


def _entries(evaluation: Evaluation, references: frozenset[str]) -> list[Entry]:
    drafts = {draft.reference: draft for draft in evaluation.drafts}
    found = [drafts.get(ref) or evaluation.record.by_reference(ref) for ref in references]
    return [entry for entry in found if entry is not None]


def checklist(plan_lines: list[Line], evaluation: Evaluation) -> str:
    """The criteria for people: a mark, the label with the site's thresholds, the state, and the values and
    dates it rests on; criteria that do not apply are listed last, each with why (V2-26)."""
    rows = []
    waived: dict[str, list[str]] = {}  # reason -> labels, so one reason is said once
    for line in plan_lines:
        criterion = line.criterion
        label = fill_parameters(criterion.label, evaluation.params)
        if line.status == "not-required":
            reason = fill_parameters(criterion.not_required, evaluation.params)
            waived.setdefault(reason, []).append(label)
            continue
        row = f"- {MARKS[line.status]} {label}" + (
            "" if line.status == "met" else f": {STATE_WORDS[line.status]}"
        )
        if line.parts:
            named = [_find(evaluation, code) for code, _ in line.parts]
            row += " — " + ", ".join(
                _phrase(sub, evaluation.params) if sub is not None else code
                for sub, (code, _) in zip(named, line.parts, strict=True)
            )
        elif line.status == "not-documented" and line.missing_facts:
            row += f" (not recorded: {'; '.join(line.missing_facts)})"
        entries = [] if line.parts else _entries(evaluation, line.evidence)  # parts say it better
        if entries:
            shown = dates_only(entries) if line.status == "met" else None
            row += f" — {shown or describe(entries, evaluation.record_names, shown=EVIDENCE_SHOWN)}"
        rows.append(row)
    if waived:  # one line, so what does not apply never reads as an empty box
        groups = (", ".join(labels) + (f" ({reason})" if reason else "") for reason, labels in waived.items())
        rows.append(f"- Not required here: {'; '.join(groups)}")
    return "\n".join(rows)


def _draft_label(draft: Entry | None) -> str:
    return draft.label if draft is not None else "the order"


def fill(template: str, plan_lines: list[Line], evaluation: Evaluation) -> str:
    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "unmet":
            return unmet_phrases(plan_lines, evaluation.params)
        if name == "checklist":
            return checklist(plan_lines, evaluation)
        if name == "draft":
            return _draft_label(evaluation.draft)
        if name in evaluation.facts:
            value = evaluation.fact(name)
            if isinstance(value, Entry) or (
                isinstance(value, list) and value and isinstance(value[0], Entry)
            ):
                return describe(value if isinstance(value, list) else [value], evaluation.record_names)
            return display(value)
        return parameter_text(name, evaluation.params.get(name))

    return PLACEHOLDER.sub(value_of, template)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def _created_resource(
    spec: SuggestionSpec, card: CardSpec, reasons: list[str], context: HookContext
) -> dict[str, Any]:
    """A valid R4 draft order with what an EHR needs to file it, and the reason the card gave (V2-28)."""
    activity = spec.activity or {}
    kind = activity.get("kind", "ServiceRequest")
    category = next(
        (
            ext.get("valueCodeableConcept")
            for ext in activity.get("extension") or ()
            if ext.get("url") == REQUEST_CATEGORY
        ),
        None,
    )
    resource: dict[str, Any] = {
        "resourceType": kind,
        "status": "draft",
        "intent": activity.get("intent", "order"),
        "category": [category] if category else None,
        "priority": activity.get("priority", "routine"),
        ("medicationCodeableConcept" if kind == "MedicationRequest" else "code"): activity.get("code"),
        "subject": {"reference": f"Patient/{context.patientId}"},
        "reasonCode": [
            {"coding": [{"system": card.topic_system, "code": card.rule_id, "display": card.topic_display}]}
        ],
        "reasonReference": [{"reference": reference} for reference in reasons] or None,
    }
    if activity.get("description"):
        resource["note"] = [{"text": activity["description"]}]
    if context.encounterId:
        resource["encounter"] = {"reference": f"Encounter/{context.encounterId}"}
    if context.userId.split("/")[0] in {"Practitioner", "PractitionerRole"}:
        resource["requester"] = {"reference": context.userId}
    return {key: value for key, value in resource.items() if value is not None}


def _suggestion(
    spec: SuggestionSpec, card: CardSpec, reasons: list[str], evaluation: Evaluation, context: HookContext
) -> Suggestion | None:
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
        resource = _created_resource(spec, card, reasons, context)
        action = Action(type="create", description=spec.label, resource=resource)
    return Suggestion(
        label=spec.label, uuid=str(uuid.uuid4()), isRecommended=spec.recommended or None, actions=[action]
    )


def _reasons(spec: CardSpec, evaluation: Evaluation) -> list[str]:
    """The records that made the card apply: what its suggestions cite as their reason."""
    found: set[str] = set()
    for condition in spec.conditions:
        found |= evaluation.measure(condition).evidence
    return sorted(found)


def _extension(plan_lines: list[Line], evaluation: Evaluation) -> dict[str, list[CriterionState] | str]:
    extension: dict[str, list[CriterionState] | str] = {CRITERIA_EXTENSION: criteria_extension(plan_lines)}
    if evaluation.draft is not None:
        extension[DRAFT_EXTENSION] = evaluation.draft.reference
    return extension


def _missing_criteria(plan_lines: list[Line], evaluation: Evaluation) -> list[Criterion]:
    """The checklist's criteria not met or not documented, a breakdown's missing parts rather than the whole
    (R2 reads every C-item; only its missing ones need recording). Not met counts too: a rule that reads an
    absent record as "no" (R4's attestation) says not met where nothing was recorded."""
    found = []
    for line in plan_lines:
        if not line.parts and line.status in UNMET_STATUSES:
            found.append(line.criterion)
        for code, status in line.parts:
            sub = _find(evaluation, code)
            if sub is not None and status in UNMET_STATUSES:
                found.append(sub)
    return found


def capture_link(
    spec: CardSpec, plan: Plan, plan_lines: list[Line], evaluation: Evaluation, launch_url: str | None
) -> Link | None:
    """The SMART link to the capture app, opened on the Questionnaire items that record what the card's
    checklist misses; none when the card shows no checklist, no base URL is known or nothing can be
    recorded there."""
    if launch_url is None or "checklist" not in PLACEHOLDER.findall(spec.detail or ""):
        return None
    captures = [c.capture for c in _missing_criteria(plan_lines, evaluation) if c.capture is not None]
    if not captures:
        return None
    form = captures[0].form  # the Questionnaire that records the first missing item
    wanted = frozenset().union(*(capture.items for capture in captures if capture.form == form))
    app_context = {
        "questionnaire": form.canonical,
        "items": [link_id for link_id in form.link_ids if link_id in wanted],
        "plan": plan.title,
        "checklist": [
            {"text": fill_parameters(line.criterion.label, evaluation.params), "status": line.status}
            for line in plan_lines
        ],
    }
    return Link(
        label=CAPTURE_LABEL, url=launch_url, type="smart", appContext=orjson.dumps(app_context).decode()
    )


def build_card(
    spec: CardSpec,
    plan: Plan,
    evaluation: Evaluation,
    context: HookContext,
    source_url: str | None,
    launch_url: str | None = None,
) -> Card:
    """The card; `launch_url` is where the capture app is launched from, when the service's base is known."""
    plan_lines = lines(plan.criteria, evaluation)  # summary, checklist and extension read the same lines
    reasons = _reasons(spec, evaluation) if spec.suggestions else []
    suggestions = [
        s for s in (_suggestion(item, spec, reasons, evaluation, context) for item in spec.suggestions) if s
    ]
    return Card(
        uuid=str(uuid.uuid4()),
        summary=_shorten(fill(spec.summary, plan_lines, evaluation)),
        detail=fill(spec.detail, plan_lines, evaluation) if spec.detail else None,
        indicator=spec.indicator,
        source=Source(
            label=plan.source_label,
            url=source_url,
            topic=Coding(system=spec.topic_system, code=spec.rule_id, display=spec.topic_display),
        ),
        suggestions=suggestions,
        selectionBehavior="any" if suggestions else None,
        overrideReasons=[Coding(**reason) for reason in spec.override_reasons],
        links=[
            *(Link(label=label, url=url) for label, url in spec.links),
            *filter(None, [capture_link(spec, plan, plan_lines, evaluation, launch_url)]),
        ],
        extension=_extension(plan_lines, evaluation),
    )
