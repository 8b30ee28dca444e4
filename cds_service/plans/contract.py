"""The integrator's contract: per hook, every record the rules read, how it is counted, which value and
unit, and which cards depend on it; then each code list once, and the service's own codes.

Computed from the loaded rules (the same walk as the prefetch templates), so `docs/integration.md` and the
`/rules/data` page cannot say something the rules do not do. Renderers (HTML, Markdown) sit above.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..record import profile_words
from . import canonical
from .loader import PLACEHOLDER
from .local_codes import concept_property, local_concepts
from .model import RuleSet
from .reads import ObservedValues, Read, Source, merged, observed_values, transitive_reads
from .rulewalk import walk

DRAFT_HOOKS = frozenset({"order-select", "order-sign"})
VALUE_WORDS = {
    "boolean": "true or false (valueBoolean)",
    "Quantity": "a number (valueQuantity)",
    "CodeableConcept": "a code (valueCodeableConcept)",
    "integer": "a whole number (valueInteger)",
    "string": "text (valueString)",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One record the rules read at a hook."""

    resource_type: str
    record: str  # the value set's title, or "any"
    valueset: str  # its name ("" for any): the code list below
    counted: str  # which statuses count
    window: str  # "last 30 days" or ""
    value: str  # for an Observation: what its value must be
    cards: tuple[str, ...]  # rule ids of the cards that read it
    tested: tuple[str, ...] = ()  # for a record of any code: the value sets its codes are then tested against


@dataclass(frozen=True, slots=True)
class HookContract:
    hook: str
    prefetch: dict[str, str]  # key -> template
    records: tuple[Row, ...]
    drafts: tuple[Row, ...]  # draft orders (order hooks) whose codes give cards


@dataclass(frozen=True, slots=True)
class CodeRow:
    system: str  # its name: "ICD-10-CM"
    code: str  # a code, or "M96.0 and below"
    display: str


@dataclass(frozen=True, slots=True)
class CodeList:
    name: str
    title: str
    url: str
    codes: tuple[CodeRow, ...]
    excluded: tuple[CodeRow, ...]
    text_terms: tuple[str, ...] = ()  # a record whose text contains one of these counts too


@dataclass(frozen=True, slots=True)
class LocalCode:
    code: str
    display: str
    value: str
    definition: str


@dataclass(frozen=True, slots=True)
class Contract:
    hooks: tuple[HookContract, ...]
    code_lists: tuple[CodeList, ...]
    local_codes: tuple[LocalCode, ...]
    local_system: str


def card_reads(ruleset: RuleSet, fact_rules: dict[str, Any]) -> dict[tuple[str, str], set[Read]]:
    """(plan id, rule id) -> what that card reads: its conditions, the facts its text names, and its plan's
    criteria when it shows them (a checklist, the unmet list) or tests them."""
    plan_rules = ruleset.plan_rules()
    found: dict[tuple[str, str], set[Read]] = {}
    for plan in ruleset.plans:
        criteria = [rule for c in plan.criteria for rule in (c.rule, c.required_rule) if rule is not None]
        for card in plan.cards:
            names = PLACEHOLDER.findall(card.summary + (card.detail or ""))
            rules = [*card.condition_rules, *({"fact": name} for name in names if name in fact_rules)]
            if {"unmet", "checklist"} & set(names) or _reads_own_criteria(card.condition_rules):
                rules += criteria
            reads = transitive_reads(rules, fact_rules, plan_rules)
            if card.per_draft:
                reads.add(Read("draft order", card.per_draft, draft=True))
            found.setdefault((plan.id, card.rule_id), set()).update(reads)
    return found


def _reads_own_criteria(rules: Iterable[Any]) -> bool:
    return any(
        operator == "criterion" or (operator == "unmet" and not args)
        for rule in rules
        for operator, args in walk(rule)
    )


def build_contract(ruleset: RuleSet) -> Contract:
    fact_rules = ruleset.fact_rules()
    reads = card_reads(ruleset, fact_rules)
    values = observed_values(
        [*fact_rules.values(), *(rule for plan in ruleset.plans for rule in plan.rules)], fact_rules
    )
    local = local_concepts(ruleset.artifacts.get("CodeSystem", {}).values())
    hooks = []
    for hook in sorted(ruleset.prefetch, key=_hook_order):
        at_hook = {
            key: found
            for key, found in reads.items()
            for plan in ruleset.plans_for(hook)
            for card in plan.cards
            if (plan.id, card.rule_id) == key and hook in card.hooks
        }
        rows = [
            _row(read, _cards(read, at_hook), ruleset, values, local)
            for read in merged((read for found in at_hook.values() for read in found), ruleset.params)
        ]
        hooks.append(
            HookContract(
                hook=hook,
                prefetch=dict(ruleset.prefetch[hook]),
                records=tuple(row for row in rows if row.resource_type != "draft order"),
                drafts=tuple(  # patient-view sends no draft orders: rules that read them find none there
                    row for row in rows if row.resource_type == "draft order" and hook in DRAFT_HOOKS
                ),
            )
        )
    named = sorted({row.valueset for hook in hooks for row in (*hook.records, *hook.drafts) if row.valueset})
    return Contract(
        hooks=tuple(hooks),
        code_lists=tuple(_code_list(name, ruleset) for name in named),
        local_codes=tuple(
            LocalCode(code, concept.get("display", ""), _local_value(concept), concept.get("definition", ""))
            for code, concept in local.items()
        ),
        local_system=canonical.LOCAL_CODES,
    )


def _hook_order(hook: str) -> int:
    order = ("patient-view", "order-select", "order-sign")
    return order.index(hook) if hook in order else len(order)


def _cards(read: Read, at_hook: dict[tuple[str, str], set[Read]]) -> tuple[str, ...]:
    same = (read.resource_type, read.valueset, read.profile, read.draft)
    return tuple(
        sorted(
            {
                rule_id
                for (_, rule_id), found in at_hook.items()
                if any((r.resource_type, r.valueset, r.profile, r.draft) == same for r in found)
            }
        )
    )


def _row(
    read: Read,
    cards: tuple[str, ...],
    ruleset: RuleSet,
    values: dict[Source, ObservedValues],
    local: dict[str, dict[str, Any]],
) -> Row:
    valueset = ruleset.valuesets.get(read.valueset)
    days = ruleset.params.get(read.lookback) if read.lookback else None
    observed = values.get((read.resource_type, read.valueset)) or ObservedValues()
    value = ""
    if read.resource_type == "Observation":
        value = _value_words(read.valueset, observed, ruleset, local)
    tests = [f"{element} in {_titles({name}, ruleset)}" for element, name in sorted(observed.elements)]
    if observed.tested:
        tests.insert(0, f"codes in {_titles(observed.tested, ruleset)}")
    return Row(
        resource_type=read.resource_type,
        record=((valueset.title or read.valueset) if valueset else "any code")
        + (f" ({'; '.join(tests)})" if tests else ""),
        valueset=read.valueset,
        counted="" if read.draft else profile_words(read.resource_type, read.profile or None),
        window=f"last {days} days" if isinstance(days, int) else "",
        value=value,
        cards=cards,
        tested=tuple(sorted(observed.tested)),
    )


def _titles(names: set[str], ruleset: RuleSet) -> str:
    return ", ".join(sorted(ruleset.valuesets[n].title or n for n in names if n in ruleset.valuesets))


def _value_words(
    name: str, observed: ObservedValues, ruleset: RuleSet, local: dict[str, dict[str, Any]]
) -> str:
    """What an Observation's value must be for the rules to read it: the CodeSystem's value type for our
    own codes, else what the rules do with it (a unit asked for, a coded answer tested)."""
    codes = _codes_of(name, ruleset)
    kinds = {
        concept_property(local[code], "value-type")
        for system, code in codes
        if code in local and system == canonical.LOCAL_CODES
    }
    kinds.discard("")
    units = sorted(observed.units)
    if observed.answers or kinds == {"CodeableConcept"}:
        titles = sorted(ruleset.valuesets[a].title or a for a in observed.answers if a in ruleset.valuesets)
        words = "a code (valueCodeableConcept)" + (f" in {', '.join(titles)}" if titles else "")
    elif units or kinds == {"Quantity"}:
        own = sorted({concept_property(local[c], "unit") for _, c in codes if c in local} - {""})
        words = f"a quantity (valueQuantity) in {' or '.join(units or own)}"
    elif len(kinds) == 1:
        words = VALUE_WORDS.get(next(iter(kinds)), next(iter(kinds)))
    else:
        words = "a number (valueQuantity, valueInteger or valueDecimal)"
    if observed.components:
        titles = sorted(
            ruleset.valuesets[c].title or c for c in observed.components if c in ruleset.valuesets
        )
        words += f"; with a component coded {', '.join(titles)}"
    return words


def _codes_of(name: str, ruleset: RuleSet) -> set[tuple[str, str]]:
    valueset = ruleset.valuesets.get(name)
    return set(valueset.include.codes) if valueset else set()


def _local_value(concept: dict[str, Any]) -> str:
    kind, unit, parent = (concept_property(concept, key) for key in ("value-type", "unit", "parent"))
    words = VALUE_WORDS.get(kind, kind)
    if unit:
        words += f" in {unit}"
    if parent:
        words = f"{words}, an answer to {parent}" if words else f"an answer to {parent}"
    return words


def _code_list(name: str, ruleset: RuleSet) -> CodeList:
    resource = next(
        (vs for vs in ruleset.artifacts.get("ValueSet", {}).values() if vs.get("name") == name), {}
    )
    compose = resource.get("compose") or {}
    return CodeList(
        name=name,
        title=resource.get("title") or name,
        url=resource.get("url", ""),
        codes=tuple(_code_rows(compose.get("include") or ())),
        excluded=tuple(_code_rows(compose.get("exclude") or ())),
        text_terms=ruleset.valuesets[name].text_terms if name in ruleset.valuesets else (),
    )


def _code_rows(parts: Iterable[dict[str, Any]]) -> Iterator[CodeRow]:
    for part in parts:
        system = canonical.SYSTEM_NAMES.get(part.get("system", ""), part.get("system", ""))
        for concept in part.get("concept") or ():
            yield CodeRow(system, concept.get("code", ""), concept.get("display", ""))
        for rule in part.get("filter") or ():
            below = "and every code below it" if rule.get("op") == "is-a" else "(only the codes below it)"
            yield CodeRow(system, f"{rule.get('value', '')} {below}", "")
