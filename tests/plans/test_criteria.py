"""Checklist criteria: met / unmet / not documented, whether each is required, and the unmet list."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.plans.evaluation import Evaluation, activated

from support.builders import evaluation, observation, procedure, run

RECORD = [
    procedure("fusion", "22612", performedDateTime="2025-01-10"),
    observation("pain", "72514-3", effectiveDateTime="2026-10-20", valueInteger=7),
]
FACTS = {
    "fusions": {"select": ["Procedure"]},
    "fusionCount": {"count": {"fact": "fusions"}},
    "lastPain": {"latest": {"select": ["Observation"]}},
    "painScore": {"value": {"fact": "lastPain"}},
    "lastCrp": {"latest": {"select": ["DiagnosticReport"]}},
    "crp": {"value": {"fact": "lastCrp"}},
}
MET = {">=": [{"fact": "painScore"}, 5]}
UNMET = {">=": [{"fact": "fusionCount"}, 2]}
UNKNOWN = {"<=": [{"fact": "crp"}, 10]}


def criteria_evaluation(*criteria: tuple[str, Any, Any]) -> Evaluation:
    return evaluation(RECORD, facts=FACTS, criteria=criteria)


def assess(result: Evaluation, code: str) -> tuple[Any, bool]:
    """(value, required) of one criterion, the pair the checklist renders."""
    (criterion,) = (criterion for criterion in result.criteria if criterion.code == code)
    with activated(result):
        outcome, required = result.assess(criterion)
    return outcome.value, required


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        (MET, True),
        (UNMET, False),
        (UNKNOWN, None),
        ({"fact": "fusions"}, True),
        ({"fact": "fusionCount"}, True),
        ({"-": [{"fact": "fusionCount"}, 1]}, False),
        ({"select": ["Condition"]}, False),
        ({"fact": "lastCrp"}, None),
    ],
)
def test_assess_value_is_met_unmet_or_not_documented(expression: Any, value: bool | None) -> None:
    """Any non-null value is read with JSON-Logic truthiness; only null means not documented."""
    assert assess(criteria_evaluation(("X", expression, None)), "X") == (value, True)


@pytest.mark.parametrize(
    ("required_when", "required"),
    [
        (None, True),  # no requiredWhen at all
        (True, True),
        (False, False),
        ({"==": [{"fact": "crp"}, 1]}, True),  # null: we cannot tell, so the criterion stays required
        ({"var": "nothing"}, True),
        ({">": [{"fact": "fusionCount"}, 0]}, True),
        ({">": [{"fact": "fusionCount"}, 1]}, False),
        ([], False),
        ("yes", True),
    ],
)
def test_required_when(required_when: Any, required: bool) -> None:
    result = criteria_evaluation(("X", UNMET, required_when))
    assert assess(result, "X") == (False, required)


def test_unmet_lists_required_unmet_or_unknown_codes_in_declaration_order() -> None:
    result = criteria_evaluation(
        ("Z1", UNKNOWN, None),
        ("A2", MET, None),
        ("M3", UNMET, None),
        ("B4", UNMET, False),
        ("C5", UNKNOWN, {"fact": "crp"}),
        ("D6", MET, False),
    )
    with activated(result):
        assert result.unmet() == ["Z1", "M3", "C5"]
    assert run(result, {"unmet": []}) == ["Z1", "M3", "C5"]


@pytest.mark.parametrize(("expression", "expected"), [(MET, True), (UNMET, False), (UNKNOWN, False)])
def test_criterion_operator_is_true_only_when_met(expression: Any, expected: bool) -> None:
    """A card condition built on a criterion must not fire on missing data, nor on a failed one."""
    result = criteria_evaluation(("H1", expression, None), ("H2", MET, None))
    assert run(result, {"criterion": "H1"}) is expected
    assert run(result, {"!": {"criterion": "H1"}}) is (not expected)
    assert run(result, {"and": [{"criterion": "H1"}, {"criterion": "H2"}]}) is expected


def test_criterion_outside_the_plan_in_focus_is_false() -> None:
    """Criteria belong to a plan: once another plan is in focus, the old code reads as not met."""
    result = criteria_evaluation(("H1", MET, None))
    assert run(result, {"criterion": "H1"}) is True
    result.focus(None, ())
    with activated(result):
        assert result.criterion("H1") is False


def test_assess_is_memoised_until_focus_changes_the_criteria() -> None:
    result = criteria_evaluation(("X", MET, None))
    (criterion,) = result.criteria
    with activated(result):
        first = result.assess(criterion)
        assert result.assess(criterion) is first
        result.focus(None, result.criteria)
        assert result.assess(criterion) is first
        result.focus(None, (criterion,))
        assert result.assess(criterion) is not first
        assert result.assess(criterion) == first
