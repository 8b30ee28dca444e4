"""`cds-service explain REQUEST.json`: why a hook call gives the cards it gives.

The request takes the path `evaluate` takes (validation, prefetch and the FHIR fetch of what is missing, the
same evaluation), and then every criterion of every plan definition of the hook is read out with the facts
it read, the records it rests on and, when it is not documented, the facts that are missing.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..config import Settings
from ..hooks import prepare_call
from ..plans.cards import STATUS, fill_parameters
from ..plans.evaluate import evaluate, start_evaluation
from ..plans.evaluation import Evaluation, activated
from ..plans.model import Criterion, Plan, RuleSet
from ..protocol.response import Card
from ..record import Entry
from ..types import JSONObject
from .loaded import rules_in_service
from .rules import fhir_fetcher, print_json, run_request, service_for
from .show import INDENT, operands

LISTED = 3  # items of a list shown before "and N more"


@dataclass(frozen=True, slots=True)
class Input:
    """Something a criterion read: a fact, a parameter or another criterion, with its value."""

    kind: Literal["fact", "parameter", "criterion"]
    name: str
    description: str
    value: Any


@dataclass(frozen=True, slots=True)
class CriterionReading:
    criterion: Criterion
    label: str  # with the site's thresholds filled in, as the checklist shows it
    value: Any  # what the expression gave, before it is read as met / not met / not documented
    met: bool | None
    required: bool
    inputs: tuple[Input, ...]
    evidence: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]  # (fact, description) at the root of a "not documented"


@dataclass(frozen=True, slots=True)
class Focus:
    """The criteria as read for the patient (draft None) or for one draft order in focus."""

    draft: Entry | None
    criteria: tuple[CriterionReading, ...]


@dataclass(frozen=True, slots=True)
class PlanReading:
    plan: Plan
    status: Literal["evaluated", "no draft order", "failed"]
    foci: tuple[Focus, ...]
    shown: tuple[str, ...]  # rule ids of its cards in the response
    not_shown: tuple[str, ...]  # rule ids of its actions for this hook that gave no card


@dataclass(frozen=True, slots=True)
class Explanation:
    hook: str
    patient: str
    t0: str
    plans: tuple[PlanReading, ...]
    cards: tuple[Card, ...]


def explain(args: argparse.Namespace, settings: Settings) -> int:
    return run_request(args, settings, _explain, show_json if args.json else show_text)


async def _explain(body: Any, settings: Settings, now: datetime) -> Explanation:
    ruleset = rules_in_service(settings)
    service = service_for(body, ruleset)
    async with fhir_fetcher(settings) as fetcher:
        call = await prepare_call(service, body, fetcher)
    hook, context = service.hook, call.request.context
    cards, failed = evaluate(
        ruleset, hook, call.record, call.drafts, now.date(), context, settings.public_base_url
    )
    shown = {card.source.topic.code for card in cards if card.source.topic is not None}
    evaluation = start_evaluation(ruleset, hook, call.record, call.drafts, now.date())
    with activated(evaluation):
        readings = tuple(
            _read_plan(plan, evaluation, ruleset, plan.id in failed, shown)
            for plan in ruleset.plans_for(hook)
        )
    return Explanation(hook, context.patientId, now.date().isoformat(), readings, tuple(cards))


def _foci(plan: Plan, evaluation: Evaluation) -> list[Entry | None]:
    """What the plan's cards are evaluated for in this hook, as `plans.evaluate` does: the patient (None),
    and each draft order in the value set of a card that is shown once per draft order."""
    specs = [spec for spec in plan.cards if evaluation.hook in spec.hooks]
    foci: list[Entry | None] = [None] if any(spec.per_draft is None for spec in specs) else []
    valuesets = [evaluation.valuesets[spec.per_draft] for spec in specs if spec.per_draft is not None]
    foci.extend(draft for draft in evaluation.drafts if any(vs.matches(draft) for vs in valuesets))
    return foci


def _read_plan(
    plan: Plan, evaluation: Evaluation, ruleset: RuleSet, failed: bool, shown: set[str]
) -> PlanReading:
    rule_ids = tuple(dict.fromkeys(spec.rule_id for spec in plan.cards if evaluation.hook in spec.hooks))
    mine = tuple(rule_id for rule_id in rule_ids if rule_id in shown)
    if failed:  # its error is logged; reading it again would only raise again
        return PlanReading(plan, "failed", (), mine, ())
    foci = []
    for draft in _foci(plan, evaluation):
        evaluation.focus(draft, plan.criteria)
        foci.append(Focus(draft, tuple(_read(c, plan, evaluation, ruleset) for c in plan.criteria)))
    not_shown = tuple(rule_id for rule_id in rule_ids if rule_id not in shown) if foci else ()
    return PlanReading(plan, "evaluated" if foci else "no draft order", tuple(foci), mine, not_shown)


def _read(criterion: Criterion, plan: Plan, evaluation: Evaluation, ruleset: RuleSet) -> CriterionReading:
    outcome, required = evaluation.assess(criterion)
    by_code = {c.code: c for c in plan.criteria}
    inputs = [
        Input("fact", name, ruleset.facts[name].description, evaluation.fact(name))
        for name in operands([criterion.rule], "fact")
        if name in ruleset.facts
    ]
    inputs += [
        Input("parameter", name, ruleset.param_descriptions.get(name, ""), ruleset.params[name])
        for name in operands([criterion.rule], "param")
        if name in ruleset.params
    ]
    inputs += [
        Input("criterion", code, by_code[code].label, evaluation.assess(by_code[code])[0].value)
        for code in operands([criterion.rule], "criterion")
        if code in by_code
    ]
    return CriterionReading(
        criterion=criterion,
        label=fill_parameters(criterion.label, evaluation.params),
        value=evaluation.measure(criterion.expression).value,
        met=outcome.value,
        required=required,
        inputs=tuple(inputs),
        evidence=tuple(sorted(outcome.evidence)),
        missing=tuple(sorted((name, ruleset.facts[name].description) for name in outcome.missing)),
    )


# -- for people ----------------------------------------------------------------------------------------


def readable(value: Any) -> str:
    """A value as a clinician reads it: records by type, date and name, lists counted."""
    if value is None:
        return "not documented"
    if value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    if isinstance(value, Entry):
        name = f" ({value.label})" if value.label != value.reference else ""
        return f"{value.type} {value.day.isoformat() if value.day else 'undated'}{name}"
    if isinstance(value, list):
        if not value:
            return "none"
        noun = "record" if all(isinstance(item, Entry) for item in value) else "item"
        count = f"{len(value)} {noun}{'s' if len(value) > 1 else ''}"
        listed = "; ".join(readable(item) for item in value[:LISTED])
        more = f"; and {len(value) - LISTED} more" if len(value) > LISTED else ""
        return f"{count}: {listed}{more}"
    return str(value)


def _state(reading: CriterionReading) -> str:
    state = STATUS[reading.met].replace("-", " ")
    required = "required" if reading.required else "not required here"
    told = (
        ""
        if reading.value is None or isinstance(reading.value, bool)
        else f"; value: {readable(reading.value)}"
    )
    return f"{state} ({required}){told}"


def text_lines(explanation: Explanation) -> Iterator[str]:
    yield f"{explanation.hook} for Patient/{explanation.patient}, T0 {explanation.t0}"
    for reading in explanation.plans:
        yield ""
        yield f"Plan {reading.plan.id}: {reading.plan.title}"
        if reading.status == "failed":
            yield f"{INDENT}could not be evaluated; the service log names the error"
        elif reading.status == "no draft order":
            yield f"{INDENT}not evaluated: no draft order in this call is one it looks at"
        elif not reading.plan.criteria:
            yield f"{INDENT}no criteria: its cards depend on their conditions only"
        for focus in reading.foci:
            if focus.draft is not None:
                yield f"{INDENT}for the draft order {readable(focus.draft)}, {focus.draft.reference}"
            for criterion in focus.criteria:
                yield from _criterion_lines(criterion)
        if reading.shown:
            yield f"{INDENT}cards shown: {', '.join(reading.shown)}"
        if reading.not_shown:
            yield f"{INDENT}not shown (their conditions were not all true): {', '.join(reading.not_shown)}"
    yield ""
    yield "Cards shown:" if explanation.cards else "No cards shown."
    for card in explanation.cards:
        rule_id = card.source.topic.code if card.source.topic is not None else "?"
        yield f"{INDENT}{card.indicator:<8} {rule_id}: {card.summary}"


def _criterion_lines(reading: CriterionReading) -> Iterator[str]:
    yield f"{INDENT}{reading.criterion.code}  {reading.label}"
    yield f"{INDENT * 2}{_state(reading)}"
    if reading.inputs:
        yield f"{INDENT * 2}inputs:"
    for item in reading.inputs:
        about = f"  ({item.description})" if item.description else ""
        yield f"{INDENT * 3}{item.kind} {item.name} = {_input_value(item)}{about}"
    if reading.evidence:
        yield f"{INDENT * 2}evidence: {', '.join(reading.evidence)}"
    if reading.missing:
        missing = "; ".join(f"{description or name} ({name})" for name, description in reading.missing)
        yield f"{INDENT * 2}missing: {missing}"


def _input_value(item: Input) -> str:
    if item.kind == "criterion":
        return STATUS[item.value].replace("-", " ")
    return readable(item.value)


def show_text(explanation: Explanation) -> None:
    print("\n".join(text_lines(explanation)))


# -- for programs --------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A value as JSON: records by their reference."""
    if isinstance(value, Entry):
        return value.reference
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def as_json(explanation: Explanation) -> JSONObject:
    return {
        "hook": explanation.hook,
        "patient": f"Patient/{explanation.patient}",
        "t0": explanation.t0,
        "plans": [
            {
                "id": reading.plan.id,
                "title": reading.plan.title,
                "status": reading.status,
                "foci": [
                    {
                        "draft": focus.draft.reference if focus.draft is not None else None,
                        "criteria": [_criterion_json(criterion) for criterion in focus.criteria],
                    }
                    for focus in reading.foci
                ],
                "shown": list(reading.shown),
                "notShown": list(reading.not_shown),
            }
            for reading in explanation.plans
        ],
        "cards": [
            {
                "rule": card.source.topic.code if card.source.topic is not None else None,
                "indicator": card.indicator,
                "summary": card.summary,
            }
            for card in explanation.cards
        ],
    }


def _criterion_json(reading: CriterionReading) -> JSONObject:
    return {
        "code": reading.criterion.code,
        "label": reading.label,
        "value": plain(reading.value),
        "state": STATUS[reading.met].replace("-", " "),
        "required": reading.required,
        "inputs": [
            {
                "kind": item.kind,
                "name": item.name,
                "description": item.description,
                "value": plain(item.value),
                "readable": _input_value(item),
            }
            for item in reading.inputs
        ],
        "evidence": list(reading.evidence),
        "missing": [{"fact": name, "description": description} for name, description in reading.missing],
    }


def show_json(explanation: Explanation) -> None:
    print_json(as_json(explanation))
