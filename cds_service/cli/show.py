"""`cds-service rules show NAME`: one fact or plan definition as the service loaded it, so a rule author
reads its logic, where it is written and what it builds on without searching the JSON files."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from ..config import Settings
from ..plans.errors import RuleSetError
from ..plans.model import CardSpec, Criterion, Fact, Plan, RuleSet
from ..plans.rulewalk import walk
from .errors import report_problems
from .loaded import rules_in_service

UNKNOWN_NAME = 2  # the exit code of a name that is neither a fact nor a plan definition
INDENT = "    "


def show(args: argparse.Namespace, settings: Settings) -> int:
    try:
        ruleset = rules_in_service(settings)
    except RuleSetError as error:
        return report_problems(error)
    name: str = args.name
    fact = ruleset.facts.get(name)
    plans = [plan for plan in ruleset.plans if name in (plan.id, plan.name)]
    if fact is None and not plans:
        print(f"error: {unknown_name(name, ruleset)}", file=sys.stderr)
        return UNKNOWN_NAME
    sections = [describe_fact(fact, ruleset)] if fact is not None else []
    sections.extend(describe_plan(plan, ruleset) for plan in plans)
    print("\n\n".join(sections))
    return 0


def unknown_name(name: str, ruleset: RuleSet) -> str:
    """Say the name is unknown and suggest the closest fact names and plan ids (case does not matter)."""
    known = {known.lower(): known for known in [*ruleset.facts, *(plan.id for plan in ruleset.plans)]}
    close = [known[match] for match in difflib.get_close_matches(name.lower(), known, n=5, cutoff=0.6)]
    message = f"no fact or plan definition is named '{name}'"
    if close:
        return f"{message}; did you mean: {', '.join(close)}?"
    plans = ", ".join(plan.id for plan in ruleset.plans)
    return f"{message}; plan definitions: {plans} (facts are in the Library files)"


def describe_fact(fact: Fact, ruleset: RuleSet) -> str:
    lines = [f"Fact {fact.name}", f"{INDENT}{fact.description or '(no description)'}"]
    lines.append(f"{INDENT}Defined in {fact.source}")
    lines.append("Rule (JSON-Logic):")
    lines.extend(indented_json(fact.rule, 1))
    lines.extend(uses([fact.rule], ruleset))
    return "\n".join(lines)


def describe_plan(plan: Plan, ruleset: RuleSet) -> str:
    lines = [f"Plan {plan.id}: {plan.title}"]
    if plan.criteria:
        lines.append("Criteria:")
        for criterion in plan.criteria:
            lines.extend(describe_criterion(criterion))
    lines.append("Actions (one card each):")
    for card in plan.cards:
        lines.extend(describe_action(card))
    lines.extend(uses(plan.rules, ruleset))
    return "\n".join(lines)


def describe_criterion(criterion: Criterion) -> Iterator[str]:
    yield f"{INDENT}{criterion.code}  {criterion.label}"
    yield f"{INDENT * 2}defined in {criterion.source}"
    yield f"{INDENT * 2}met when:"
    yield from indented_json(criterion.rule, 3)
    if criterion.required_rule is not None:
        yield f"{INDENT * 2}required only when:"
        yield from indented_json(criterion.required_rule, 3)


def describe_action(card: CardSpec) -> Iterator[str]:
    scope = f"; once per draft order in {card.per_draft}" if card.per_draft else ""
    yield f"{INDENT}{card.rule_id}  ({', '.join(sorted(card.hooks))}; {card.indicator}{scope})"
    yield f"{INDENT * 2}title: {card.summary}"
    if not card.condition_rules:
        yield f"{INDENT * 2}shown whenever the hook fires"
        return
    yield f"{INDENT * 2}shown when all of these are true:"
    for rule in card.condition_rules:
        yield from indented_json(rule, 3)


def uses(rules: Iterable[Any], ruleset: RuleSet) -> Iterator[str]:
    """The facts and parameters the rules name, each with its description, then every fact they build
    on through other facts."""
    facts = [name for name in operands(rules, "fact") if name in ruleset.facts]
    params = [name for name in operands(rules, "param") if name in ruleset.params]
    params += [name for name in operands(rules, "fact") if name in ruleset.params]  # template placeholders
    yield "Uses facts:" if facts else "Uses no facts."
    for name in facts:
        yield f"{INDENT}{name}: {ruleset.facts[name].description or '(no description)'}"
    if params:
        yield "Uses parameters:"
    for name in params:
        note = ruleset.param_descriptions.get(name) or "(no description)"
        yield f"{INDENT}{name} = {orjson.dumps(ruleset.params[name]).decode()}: {note}"
    every = builds_on(facts, ruleset)
    if every:
        yield f"Builds on, directly or through other facts: {', '.join(sorted(every))}"


def builds_on(names: Iterable[str], ruleset: RuleSet) -> set[str]:
    """Every fact reachable from `names` through the facts their rules name."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen or name not in ruleset.facts:
            continue
        seen.add(name)
        pending.extend(operands([ruleset.facts[name].rule], "fact"))
    return seen


def operands(rules: Iterable[Any], operator: str) -> list[str]:
    """The constant names an operator takes in the rules (`fact`, `param`), first appearance first."""
    found: dict[str, None] = {}
    for rule in rules:
        for name, args in walk(rule):
            if name == operator and args and isinstance(args[0], str):
                found.setdefault(args[0])
    return list(found)


def indented_json(rule: Any, depth: int) -> Iterator[str]:
    text = orjson.dumps(rule, option=orjson.OPT_INDENT_2).decode()
    for line in text.splitlines():
        yield f"{INDENT * depth}{line}"
