"""The bundled rules run as generated Python: no fact or plan expression falls back to closures."""

from __future__ import annotations

from cds_service.config import bundled
from cds_service.logic import closures
from cds_service.plans.loader import load_ruleset
from cds_service.plans.model import RuleSet
from cds_service.types import Evaluator


def plan_expressions(ruleset: RuleSet) -> list[Evaluator]:
    found: list[Evaluator] = []
    for plan in ruleset.plans:
        for criterion in plan.criteria:
            found += [criterion.expression, *(e for e in (criterion.required_when, criterion.breakdown) if e)]
        for card in plan.cards:
            found += card.conditions
            for suggestion in card.suggestions:
                found += suggestion.conditions
    return found


def test_every_bundled_fact_and_plan_expression_is_generated_code() -> None:
    ruleset = load_ruleset(bundled("plandefinitions"))
    facts = {name: closures(fact.compiled) for name, fact in ruleset.facts.items()}
    expressions = plan_expressions(ruleset)
    assert len(facts) > 100 and len(expressions) > 100
    assert {name: count for name, count in facts.items() if count} == {}
    assert [closures(expression) for expression in expressions if closures(expression)] == []
    assert all(hasattr(fact.compiled, "source") for fact in ruleset.facts.values())
