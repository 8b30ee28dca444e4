"""What a rule page says about one plan, worked out from the loaded rules so that it never drifts from what
the service evaluates: each rule once (its actions merged by rule id) with what triggers it and its card text,
the thresholds in force, and the code lists behind the triggers.

Card text is a template; on the page each placeholder becomes either the value in force (a threshold) or a
short description of what the card fills in for the patient ("the missing items").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..plans.cards import PLACEHOLDER, display, parameter_text
from ..plans.model import CardSpec, Plan, RuleSet
from ..plans.rulewalk import walk
from ..protocol.request import HOOKS

HOOK_WORDS = {"patient-view": "chart opened", "order-select": "order selected", "order-sign": "orders signed"}
SLOT_WORDS = {
    "unmet": "the missing items",
    "checklist": "the checklist of the criteria below, each marked met, not met or not documented",
    "draft": "the draft order",
}
# A parameter's documentation ends in notes for rule authors: "(D2; S000 '3-6 months')", "[DESIGN]".
AUTHOR_NOTE = re.compile(r"\s*(\([^()]*\)|\[[^\[\]]*\])\s*\.?\s*$")
COMPARISONS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "=", "===": "=", "!=": "≠", "!==": "≠"}
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a card text on the page: literal text, or (`slot`) what the card fills in for the patient."""

    text: str
    slot: bool = False


@dataclass(frozen=True, slots=True)
class Variant:
    """One wording of a rule's card, and the hooks it is shown at."""

    hooks: tuple[str, ...]
    summary: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    indicators: tuple[str, ...]
    hooks: tuple[str, ...]
    drafts: tuple[str, ...]  # value sets of the draft orders it is evaluated for
    when: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # (hooks, its conditions in words), distinct
    looks_for: tuple[str, ...]  # value sets its own conditions read (not those every rule here shares)
    variants: tuple[Variant, ...]
    suggestions: tuple[str, ...]
    links: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Threshold:
    meaning: str
    value: str


@dataclass(frozen=True, slots=True)
class Outline:
    rules: tuple[Rule, ...]
    thresholds: tuple[Threshold, ...]
    code_lists: tuple[str, ...]  # value set names the triggers use, in the order the rules name them


def outline(plan: Plan, ruleset: RuleSet) -> Outline:
    groups: dict[str, list[CardSpec]] = {}
    for card in plan.cards:
        groups.setdefault(card.rule_id, []).append(card)
    named = {
        rule_id: _facts_named(c for card in cards for c in card.condition_rules)
        for rule_id, cards in groups.items()
    }
    shared = {
        fact for facts in named.values() for fact in facts if sum(fact in f for f in named.values()) > 1
    }
    rules = tuple(
        _rule(rule_id, cards, named[rule_id] - shared, ruleset) for rule_id, cards in groups.items()
    )
    code_lists = dict.fromkeys(name for rule in rules for name in (*rule.drafts, *rule.looks_for))
    return Outline(rules, _thresholds(plan, ruleset), tuple(code_lists))


def pieces(template: str, ruleset: RuleSet) -> tuple[Piece, ...]:
    """A card template for the page: thresholds filled in with their values, per-patient parts described."""
    found: list[Piece] = []
    last = 0
    for match in PLACEHOLDER.finditer(template):
        found.append(Piece(template[last : match.start()]))
        name = match.group(1)
        if name in ruleset.params:
            found.append(Piece(parameter_text(name, ruleset.params[name])))
        else:
            found.append(Piece(SLOT_WORDS.get(name) or _fact_words(name, ruleset), slot=True))
        last = match.end()
    found.append(Piece(template[last:]))
    return tuple(piece for piece in found if piece.text)


def readable(template: str, ruleset: RuleSet) -> str:
    """`pieces` as plain text, each per-patient part in parentheses: "Revision criteria not met: (the
    missing items)"."""
    return "".join(bracketed(pieces(template, ruleset)))


def bracketed(parts: tuple[Piece, ...]) -> Iterator[str]:
    """Each piece's text, a slot in parentheses unless the template already puts it inside some."""
    depth = 0
    for piece in parts:
        if not piece.slot:
            depth = max(depth + piece.text.count("(") - piece.text.count(")"), 0)
        yield f"({piece.text})" if piece.slot and not depth else piece.text


def meaning(name: str, ruleset: RuleSet) -> str:
    """What a parameter is, for a clinician: its documentation without the authors' trailing notes."""
    return _plain(ruleset.param_descriptions.get(name, "")) or _words(name.rpartition(".")[2] or name)


def _plain(text: str) -> str:
    """Text for a clinician without the trailing notes authors leave in descriptions: "(S003)", "[DESIGN]"."""
    text = text.strip()
    while (shorter := AUTHOR_NOTE.sub("", text)) != text:
        text = shorter
    return text.rstrip(". ")


def _rule(rule_id: str, cards: list[CardSpec], own_facts: set[str], ruleset: RuleSet) -> Rule:
    variants: dict[tuple[str, str | None], set[str]] = {}
    conditions: dict[tuple[str, ...], set[str]] = {}
    for card in cards:
        variants.setdefault((card.summary, card.detail), set()).update(card.hooks)
        parts = (part for rule in card.condition_rules for part in _conjuncts(rule))
        when = tuple(dict.fromkeys(condition_words(part, ruleset) for part in parts))
        conditions.setdefault(when, set()).update(card.hooks)
    return Rule(
        id=rule_id,
        title=cards[0].topic_display,
        indicators=tuple(dict.fromkeys(card.indicator for card in cards)),
        hooks=_in_order(hook for card in cards for hook in card.hooks),
        drafts=tuple(dict.fromkeys(card.per_draft for card in cards if card.per_draft)),
        when=tuple((_in_order(hooks), when) for when, hooks in conditions.items() if when),
        looks_for=tuple(_reach([{"fact": name} for name in sorted(own_facts)], ruleset)[2]),
        variants=tuple(Variant(_in_order(hooks), s, d) for (s, d), hooks in variants.items()),
        suggestions=tuple(dict.fromkeys(s.label for card in cards for s in card.suggestions)),
        links=tuple(dict.fromkeys(link for card in cards for link in card.links)),
    )


def condition_words(rule: Any, ruleset: RuleSet) -> str:
    """A card's applicability condition as a clinician reads it: facts by their descriptions."""
    if not isinstance(rule, dict) or len(rule) != 1:
        return (
            display(rule)
            if not isinstance(rule, list)
            else ", ".join(condition_words(r, ruleset) for r in rule)
        )
    operator, args = next(iter(rule.items()))
    items = args if isinstance(args, list) else [args]
    first = items[0] if items else None
    if operator == "fact" and isinstance(first, str):
        return _fact_words(first, ruleset)
    if operator == "param" and isinstance(first, str):
        value = ruleset.params.get(first)
        return _setting(first, True, ruleset) if isinstance(value, bool) else parameter_text(first, value)
    if operator == "!":
        return _negated(first, ruleset)
    if operator == "!!":
        return condition_words(first, ruleset)
    if operator in {"and", "or"}:
        words = (condition_words(item, ruleset) for item in items)
        return f" {operator} ".join(
            f"({text})" if _is(item, "and") or _is(item, "or") else text
            for item, text in zip(items, words, strict=True)
        )
    if operator == "known":
        return f"{condition_words(first, ruleset)} recorded"
    if operator == "criterion":
        return f"criterion {first} met"
    if operator == "unmet":
        return _unmet_words(rule, ruleset)
    if operator == "hook":
        return "the hook"
    if operator in COMPARISONS and len(items) == 2:
        if _is(items[0], "hook") and items[1] in HOOK_WORDS:
            return HOOK_WORDS[items[1]]
        left, right = (condition_words(item, ruleset) for item in items)
        return f"{left} {COMPARISONS[operator]} {right}"
    return "a further computed condition"


def _conjuncts(rule: Any) -> Iterator[Any]:
    """The parts of a condition that must all hold, so each reads as a line of its own."""
    if _is(rule, "and") and isinstance(rule["and"], list):
        for item in rule["and"]:
            yield from _conjuncts(item)
    else:
        yield rule


def _setting(name: str, wanted: bool, ruleset: RuleSet) -> str:
    """A yes/no setting a condition needs, and where it stands: a card that is off reads as off."""
    now = "on" if ruleset.params.get(name) else "off"
    return f"“{meaning(name, ruleset)}” turned {'on' if wanted else 'off'} (it is {now})"


def _negated(rule: Any, ruleset: RuleSet) -> str:
    if _is(rule, "param") and isinstance(ruleset.params.get(rule["param"]), bool):
        return _setting(rule["param"], False, ruleset)
    if _is(rule, "fact") or _is(rule, "param"):
        words = condition_words(rule, ruleset)
        return f"{words} — no" if ":" in words else f"{words}: no"
    if _is(rule, "known"):
        return f"{condition_words(rule['known'], ruleset)} not recorded"
    if _is(rule, "criterion"):
        return f"criterion {rule['criterion']} not met"
    if _is(rule, "unmet"):
        return "every required criterion met"
    return f"not ({condition_words(rule, ruleset)})"


def _unmet_words(rule: dict[str, Any], ruleset: RuleSet) -> str:
    other = rule["unmet"] if isinstance(rule["unmet"], str) else None
    plan = next((p for p in ruleset.plans if p.id == other), None)
    return (
        f"a required criterion of “{plan.title}” not met or not documented"
        if plan
        else ("a required criterion not met or not documented")
    )


def _is(rule: Any, operator: str) -> bool:
    return isinstance(rule, dict) and len(rule) == 1 and operator in rule


def _fact_words(name: str, ruleset: RuleSet) -> str:
    fact = ruleset.facts.get(name)
    text = (_plain(fact.description) if fact else "") or _words(name)
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def _words(name: str) -> str:
    return CAMEL.sub(" ", name).lower()


def _in_order(hooks: Iterable[str]) -> tuple[str, ...]:
    present = set(hooks)
    return tuple(hook for hook in HOOKS if hook in present)


def _facts_named(rules: Iterable[Any]) -> set[str]:
    return {str(args[0]) for rule in rules for op, args in walk(rule) if op == "fact" and args}


def _reach(rules: Iterable[Any], ruleset: RuleSet) -> tuple[list[str], list[str], list[str]]:
    """(facts, parameters, value sets) that `rules` read, through the facts they use and the other plans
    whose criteria they read, each in the order first met."""
    plans = {plan.id: plan for plan in ruleset.plans}
    pending = list(rules)[::-1]
    facts: dict[str, None] = {}
    params: dict[str, None] = {}
    valuesets: dict[str, None] = {}
    seen_plans: set[str] = set()
    while pending:
        for operator, args in walk(pending.pop()):
            name = args[0] if args and isinstance(args[0], str) else None
            if operator == "fact" and name in ruleset.facts and name not in facts:
                facts[name] = None
                pending.append(ruleset.facts[name].rule)
            elif operator in {"fact", "param"} and name in ruleset.params:
                params[name] = None
            elif operator == "unmet" and name in plans and name not in seen_plans:
                seen_plans.add(name)
                pending.extend(plans[name].rules)
            valuesets.update((arg, None) for arg in args if isinstance(arg, str) and arg in ruleset.valuesets)
    return list(facts), list(params), list(valuesets)


def _texts(plan: Plan) -> Iterator[str]:
    for criterion in plan.criteria:
        yield from (criterion.label, criterion.missing, criterion.not_required)
    for card in plan.cards:
        yield from (card.summary, card.detail or "")


def _thresholds(plan: Plan, ruleset: RuleSet) -> tuple[Threshold, ...]:
    """Every parameter the plan reads or its texts show, with its value in force."""
    in_texts = [{"param": name} for text in _texts(plan) for name in PLACEHOLDER.findall(text)]
    _, params, _ = _reach([*in_texts, *plan.rules], ruleset)
    return tuple(
        Threshold(meaning(name, ruleset), parameter_text(name, ruleset.params[name])) for name in params
    )
