"""Three-valued logic of the clinical engine, and its isolation from the standard JSON-Logic engine."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from cds_service.logic import Engine, LogicError, LogicRuntimeError, Operation, compile
from cds_service.plans.kleene import clinical_engine
from cds_service.plans.vocabulary import Vocabulary

ENGINE = clinical_engine(Vocabulary(facts=(), valuesets=(), params=()))
T, F, N = True, False, None

AND = {
    (T, T): T, (T, F): F, (T, N): N,
    (F, T): F, (F, F): F, (F, N): F,
    (N, T): N, (N, F): F, (N, N): N,
}  # fmt: skip
OR = {
    (T, T): T, (T, F): T, (T, N): T,
    (F, T): T, (F, F): F, (F, N): N,
    (N, T): T, (N, F): N, (N, N): N,
}  # fmt: skip


@pytest.mark.parametrize(("pair", "expected"), AND.items())
def test_and_truth_table(pair: tuple[Any, Any], expected: Any) -> None:
    assert ENGINE.compile({"and": list(pair)})(None) is expected


@pytest.mark.parametrize(("pair", "expected"), OR.items())
def test_or_truth_table(pair: tuple[Any, Any], expected: Any) -> None:
    assert ENGINE.compile({"or": list(pair)})(None) is expected


@pytest.mark.parametrize(("value", "negated"), [(T, F), (F, T), (N, N)])
def test_not_and_double_not(value: Any, negated: Any) -> None:
    assert ENGINE.compile({"!": [value]})(None) is negated
    assert ENGINE.compile({"!!": [value]})(None) is (None if value is None else value)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"and": [1, 0, None]}, 0),
        ({"and": [None, ""]}, ""),
        ({"and": [1, "x"]}, "x"),
        ({"or": [None, "x"]}, "x"),
        ({"or": [0, None]}, None),
        ({"or": [0, ""]}, ""),
        ({"!": [[]]}, True),
        ({"!!": [[]]}, False),
        ({"!!": [{"var": "missing"}]}, None),
        ({"and": [{"var": "a"}, {"<": [{"var": "b"}, 3]}]}, None),
    ],
)
def test_values_and_truthiness_follow_json_logic(rule: Any, expected: Any) -> None:
    """Only null changes meaning; other operands keep JSON-Logic values and truthiness."""
    assert ENGINE.compile(rule)({"a": True}) == expected


COMPARISONS = ("<", "<=", ">", ">=", "==", "!=", "===", "!==")


@pytest.mark.parametrize("op", COMPARISONS)
@pytest.mark.parametrize("args", [[None, 120], [120, None], [None, None], [{"var": "crp"}, 10]])
def test_comparison_with_null_is_null(op: str, args: list[Any]) -> None:
    """Missing data must read "not documented", never pass or fail a threshold."""
    assert ENGINE.compile({op: args})({}) is None


def test_headline_case_differs_from_the_standard_engine() -> None:
    rule = {"<=": [None, 120]}
    assert ENGINE.compile(rule)(None) is None
    assert compile(rule)(None) is True


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"<": [1, 2, 3]}, True),
        ({"<": [1, 3, 2]}, False),
        ({"<": [1, 1, 2]}, False),
        ({"<=": [1, 1, 2]}, True),
        ({"<=": [1, 3, 2]}, False),
        ({"<": [1, None, 3]}, None),
        ({"<=": [1, 2, None]}, None),
    ],
)
def test_between_form(rule: Any, expected: Any) -> None:
    assert ENGINE.compile(rule)(None) is expected


@pytest.mark.parametrize(
    "rule", [{">": [3, 2, 1]}, {"<": [1, 2, 3, 4]}, {"==": [1, 1, 1]}, {"==": [1, 1, 2]}]
)
def test_chains_agree_with_the_standard_engine(rule: Any) -> None:
    """Comparisons over more than two operands chain pairwise in both engines."""
    assert ENGINE.compile(rule)(None) is compile(rule)(None)


@pytest.mark.parametrize("rule", [{">": [3, None, 1]}, {"==": [1, 1, None]}])
def test_chains_with_an_unknown_operand_are_unknown(rule: Any) -> None:
    assert ENGINE.compile(rule)(None) is None


COMPILERS = (ENGINE.compile, compile)  # the clinical engine, then the standard one
SAMPLE = [0, 1, -1, 2.5, 120, "1", "10", "9", "a", "", True, False, [], [1], [1, 2]]


def outcome(compiled: Callable[[Any], Any], data: Any) -> tuple[str, Any]:
    """A result or the JSON-Logic error it raised ("NaN" for a non-numeric string), so both can agree."""
    try:
        return "value", compiled(data)
    except LogicRuntimeError as error:
        return "error", error.type


@pytest.mark.parametrize("op", COMPARISONS)
def test_non_null_comparisons_agree_with_the_standard_engine(op: str) -> None:
    clinical_vars, standard_vars = (engine({op: [{"var": "a"}, {"var": "b"}]}) for engine in COMPILERS)
    for a, b in itertools.product(SAMPLE, repeat=2):
        data = {"a": a, "b": b}
        assert outcome(clinical_vars, data) == outcome(standard_vars, data), (op, a, b)
    for constant, value in itertools.product((120, "10", 2.5), SAMPLE):  # the standard engine inlines these
        rule = {op: [{"var": "a"}, constant]}
        clinical, standard = (engine(rule) for engine in COMPILERS)
        assert outcome(clinical, {"a": value}) == outcome(standard, {"a": value}), (op, value, constant)


@pytest.mark.parametrize("op", ["<", "<="])
def test_between_agrees_with_the_standard_engine(op: str) -> None:
    clinical, standard = (engine({op: [{"var": "a"}, {"var": "b"}, {"var": "c"}]}) for engine in COMPILERS)
    for a, b, c in itertools.product([0, 1, 2, "1", "a"], repeat=3):
        data = {"a": a, "b": b, "c": c}
        assert outcome(clinical, data) == outcome(standard, data), (op, a, b, c)


def test_extending_the_clinical_engine_leaves_the_standard_compile_alone() -> None:
    """Card logic and the conformance-tested `compile` share operator code but not operator tables."""
    extended = clinical_engine(Vocabulary(facts={"x"}, valuesets=(), params=())).extend(
        {"<=": Operation(func=lambda a, b: "patched", min_args=2, max_args=2)}
    )
    assert extended.compile({"<=": [1, 2]})(None) == "patched"
    assert ENGINE.compile({"<=": [1, 2]})(None) is True
    assert compile({"<=": [None, 120]})(None) is True
    assert compile({"and": [None, False]})(None) is None
    assert compile({"!": [None]})(None) is True
    for name in ("fact", "select", "within_days", "criterion"):
        with pytest.raises(LogicError, match="unknown operator"):
            compile({name: ["x"]})
        assert name not in Engine().operations
