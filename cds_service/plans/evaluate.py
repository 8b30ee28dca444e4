"""Run the plan definitions of one hook over one patient record and collect the cards they produce.

A failure inside one plan definition is logged (rule ids only, no patient data) and skipped, so it never
takes down the cards of the others; malformed patient data, which the record finds when a rule first reads
it, refuses the whole call instead.
"""

from __future__ import annotations

import logging
from datetime import date

from ..errors import Exhausted, ServiceError
from ..protocol.request import HookContext
from ..protocol.response import Card
from ..record import Entry, PatientRecord
from .capture import LAUNCH_PATH
from .cards import build_card
from .evaluation import Evaluation, activated
from .kleene import is_true
from .model import CardSpec, Plan, RuleSet

log = logging.getLogger("cds_service.plans")


def _applies(spec: CardSpec) -> bool:
    return all(is_true(condition(None)) for condition in spec.conditions)


def _plan_cards(
    plan: Plan,
    hook: str,
    evaluation: Evaluation,
    context: HookContext,
    source_url: str | None,
    launch_url: str | None,
) -> list[Card]:
    cards = []
    for spec in plan.cards:
        if hook not in spec.hooks:
            continue
        if spec.per_draft is None:
            evaluation.focus(None, plan.criteria)
            if _applies(spec):
                cards.append(build_card(spec, plan, evaluation, context, source_url, launch_url))
            continue
        members = evaluation.valuesets[spec.per_draft]
        for draft in evaluation.drafts:
            if members.matches(draft):
                evaluation.focus(draft, plan.criteria)
                if _applies(spec):
                    cards.append(build_card(spec, plan, evaluation, context, source_url, launch_url))
    return cards


def start_evaluation(
    ruleset: RuleSet, hook: str, record: PatientRecord, drafts: list[Entry], t0: date
) -> Evaluation:
    """A fresh evaluation of one call; `cds-service explain` starts the same one to trace criteria."""
    return Evaluation(
        record=record,
        t0=t0,
        hook=hook,
        params=ruleset.params,
        facts=ruleset.facts,
        draft_dependent=ruleset.draft_dependent,
        valuesets=ruleset.valuesets,
        drafts=drafts,
        plan_criteria={plan.id: plan.criteria for plan in ruleset.plans},
        record_names=ruleset.record_names,
    )


def evaluate(
    ruleset: RuleSet,
    hook: str,
    record: PatientRecord,
    drafts: list[Entry],
    t0: date,
    context: HookContext,
    source_base: str | None = None,
) -> tuple[list[Card], list[str]]:
    """Cards for `hook`, in plan order, and the ids of plans that failed (logged, not raised). With a
    `source_base`, cards link their rule page and the capture app served under it."""
    evaluation = start_evaluation(ruleset, hook, record, drafts, t0)
    launch_url = f"{source_base}{LAUNCH_PATH}" if source_base else None
    cards: list[Card] = []
    failed: list[str] = []
    with activated(evaluation):
        for plan in ruleset.plans_for(hook):
            try:
                source_url = plan.source_url or (f"{source_base}/rules/{plan.id}" if source_base else None)
                cards.extend(_plan_cards(plan, hook, evaluation, context, source_url, launch_url))
            except (MemoryError, RecursionError) as error:  # the call, not the plan: no partial answer
                log.error("plan %s ran out of resources on %s: %s", plan.id, hook, type(error).__name__)
                raise Exhausted.single(
                    "the service ran out of memory evaluating this call; nothing was answered, try again",
                    None,
                    "too-costly",
                ) from None
            except ServiceError:  # malformed data a rule read (found only then): the call is refused
                raise
            except Exception as error:  # one broken plan must not silence the others
                log.error("plan %s failed on %s: %s", plan.id, hook, type(error).__name__)
                failed.append(plan.id)
    return cards, failed
