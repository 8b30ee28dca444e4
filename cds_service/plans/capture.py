"""Which Questionnaire items can record each criterion: what a card's SMART link opens the capture app on.

Found at load by walking each criterion's rules (its expression and requiredWhen, through the facts and the
other plans' criteria they read) and matching what they read against what each item extracts: an
Observation item by its code in a value set read as an Observation, a component item by its code in a value
set read as a component, and a definition-based group (outside care) by a code it may give the resource it
builds in a value set read as that type. So the link follows the rules, never a list kept by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from .model import Capture, CaptureForm, Criterion, Plan
from .questionnaires import COMPONENT, asked, extraction_context
from .reads import direct_reads, observed_values, transitive_rules
from .terminology import ValueSet

LAUNCH_PATH = "/capture/launch.html"  # under the service's base URL, where the capture app is served


@dataclass(frozen=True, slots=True)
class _Reads:
    """What one criterion reads: value sets by resource type, and the value sets of components read."""

    by_type: dict[str, frozenset[str]]
    components: frozenset[str]


def _form(questionnaire: dict[str, Any]) -> CaptureForm:
    url, version = str(questionnaire.get("url") or ""), questionnaire.get("version")
    link_ids = tuple(str(question.item.get("linkId")) for question in asked(questionnaire))
    return CaptureForm(f"{url}|{version}" if version else url, link_ids)


def _contains(valuesets: dict[str, ValueSet], names: Iterable[str], coding: Any) -> bool:
    if not isinstance(coding, dict):
        return False
    system, code = str(coding.get("system") or ""), str(coding.get("code") or "")
    return any(valuesets[name].contains(system, code) for name in names if name in valuesets)


def _built_codes(group: dict[str, Any], resource_type: str) -> list[Any]:
    """The codes a definition-based group may give the resource it builds (`<type>.code.coding` answers)."""
    return [
        option.get("valueCoding")
        for item in group.get("item") or ()
        if isinstance(item, dict)
        and str(item.get("definition", "")).endswith(f"#{resource_type}.code.coding")
        for option in item.get("answerOption") or ()
        if isinstance(option, dict)
    ]


def _recording(questionnaire: dict[str, Any], reads: _Reads, valuesets: dict[str, ValueSet]) -> set[str]:
    """The linkIds of the items whose extracted records `reads` covers."""
    found: set[str] = set()
    for question in asked(questionnaire):
        item = question.item
        built = extraction_context(item)
        if built is not None:  # a definition-based group: the resource it builds, by the codes it may give
            codes, read = _built_codes(item, built), reads.by_type.get(built, frozenset())
        elif item.get("type") in {"group", "display"}:
            continue
        elif question.mode is True:
            codes, read = item.get("code") or [], reads.by_type.get("Observation", frozenset())
        elif question.mode == COMPONENT:
            codes, read = item.get("code") or [], reads.components
        else:
            continue
        if any(_contains(valuesets, read, coding) for coding in codes):
            found.add(str(item.get("linkId")))
    return found


def _reads(criterion: Criterion, fact_rules: dict[str, Any], criteria_rules: dict[str, list[Any]]) -> _Reads:
    own = [rule for rule in (criterion.rule, criterion.required_rule) if rule is not None]
    reached = transitive_rules(own, fact_rules, criteria_rules)
    by_type: dict[str, set[str]] = {}
    for rule in reached:
        for read in direct_reads(rule):
            if read.valueset and not read.draft:
                by_type.setdefault(read.resource_type, set()).add(read.valueset)
    components = {
        name for values in observed_values(reached, fact_rules).values() for name in values.components
    }
    return _Reads({kind: frozenset(names) for kind, names in by_type.items()}, frozenset(components))


def with_capture(
    plans: Iterable[Plan],
    questionnaires: Iterable[dict[str, Any]],
    valuesets: dict[str, ValueSet],
    fact_rules: dict[str, Any],
) -> list[Plan]:
    """The plans with each criterion's `capture`: the first Questionnaire with items that record it."""
    loaded = list(plans)
    forms = [(questionnaire, _form(questionnaire)) for questionnaire in questionnaires]
    # `{"unmet": plan}` reads that plan's criteria, not its cards: follow only those
    criteria_rules = {
        plan.id: [rule for c in plan.criteria for rule in (c.rule, c.required_rule) if rule is not None]
        for plan in loaded
    }

    def capture(criterion: Criterion) -> Capture | None:
        reads = _reads(criterion, fact_rules, criteria_rules)
        for questionnaire, form in forms:
            items = _recording(questionnaire, reads, valuesets)
            if items:
                return Capture(form, frozenset(items))
        return None

    return [
        replace(plan, criteria=tuple(replace(c, capture=capture(c)) for c in plan.criteria))
        for plan in loaded
    ]
