"""The loaded, compiled form of the plan definitions: what an evaluation needs, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..types import Evaluator
from .describe import RecordNames
from .terminology import ValueSet

Indicator = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class CaptureForm:
    """A Questionnaire the capture app renders: its canonical and every item's linkId, in order."""

    canonical: str  # `url|version`, as a SMART link's appContext names it
    link_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Capture:
    """The items of one Questionnaire whose answers become records a criterion reads: what a card's SMART
    link opens the capture app on when that criterion is missing."""

    form: CaptureForm
    items: frozenset[str]


@dataclass(frozen=True, slots=True)
class Criterion:
    """One line of a card's checklist: met, unmet or not documented, and whether it is required."""

    code: str
    label: str
    expression: Evaluator
    required_when: Evaluator | None
    citation: str
    breakdown: Evaluator | None = None  # the unmet sub-items, shown as R2(C1,C2) in the unmet list
    rule: Any = None  # the JSON-Logic as written, kept for `cds-service rules show`
    required_rule: Any = None  # its requiredWhen as written
    source: str = ""  # "file: path" of the criterion extension
    missing: str = ""  # plain words for a summary when it is not met: "no CBT"
    not_required: str = ""  # why it does not apply when requiredWhen is false: "no radicular symptoms"
    capture: Capture | None = None  # the Questionnaire items that can record it, found at load


@dataclass(frozen=True, slots=True)
class SuggestionSpec:
    """A suggestion: create a resource from an ActivityDefinition, or remove the draft order in focus."""

    label: str
    kind: str  # "create" or "remove"
    activity: dict[str, Any] | None = None
    recommended: bool = False
    conditions: tuple[Evaluator, ...] = ()  # offered only when all are true


@dataclass(frozen=True, slots=True)
class CardSpec:
    rule_id: str
    topic_system: str
    topic_display: str
    hooks: frozenset[str]
    indicator: Indicator
    summary: str
    detail: str | None
    conditions: tuple[Evaluator, ...]
    per_draft: str | None  # value set of the draft orders this card is evaluated for, one card each
    suggestions: tuple[SuggestionSpec, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    override_reasons: tuple[dict[str, str], ...] = ()
    condition_rules: tuple[Any, ...] = ()  # the conditions as written, for `cds-service rules show`


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    url: str
    title: str
    description: str
    usage: str
    source_label: str
    source_url: str | None
    criteria: tuple[Criterion, ...]
    cards: tuple[CardSpec, ...]
    name: str = ""  # the PlanDefinition's computable name, which authors may look a plan up by
    rules: tuple[Any, ...] = ()  # every JSON-Logic rule in it, templates' facts included: what it reads

    def hooks(self) -> frozenset[str]:
        return frozenset(hook for card in self.cards for hook in card.hooks)


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    description: str
    compiled: Evaluator
    rule: Any = None  # the JSON-Logic as written, kept for `cds-service rules show`
    source: str = ""  # "file: path" where the fact is defined
    library: str = ""  # the id of the Library that defines it


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Everything loaded from the plan-definition folder, immutable so a reload can swap it atomically."""

    plans: tuple[Plan, ...]
    facts: dict[str, Fact]
    draft_dependent: frozenset[str]
    valuesets: dict[str, ValueSet]
    params: dict[str, Any]
    prefetch: dict[str, dict[str, str]] = field(default_factory=dict)  # hook -> key -> template
    param_descriptions: dict[str, str] = field(default_factory=dict)  # the Library's `documentation`
    record_names: RecordNames = field(default_factory=lambda: RecordNames({}))  # how cards name records
    # the knowledge artifacts as loaded (site additions merged): resourceType -> id -> resource, for the FHIR
    # facade, the package and the rule pages, so none of them re-reads a folder that may have changed since
    artifacts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def plans_for(self, hook: str) -> list[Plan]:
        return [plan for plan in self.plans if hook in plan.hooks()]

    def fact_rules(self) -> dict[str, Any]:
        """fact name -> its JSON-Logic as written: what a walk of the rules follows `{"fact": name}` into."""
        return {name: fact.rule for name, fact in self.facts.items()}

    def plan_rules(self) -> dict[str, list[Any]]:
        """plan id -> every rule in it: what a walk follows `{"unmet": "plan-id"}` into."""
        return {plan.id: list(plan.rules) for plan in self.plans}
