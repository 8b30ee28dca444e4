"""Three-valued logic of the clinical engine, and its isolation from the standard JSON-Logic engine."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cds_service.logic import Engine, LogicError, LogicRuntimeError, Operation, closures, compile
from cds_service.logic.operators import STANDARD_OPERATIONS
from cds_service.plans.engine import clinical_engine
from cds_service.plans.evaluation import activated
from cds_service.plans.kleene import OBSERVERS
from cds_service.plans.vocabulary import Vocabulary

from support.builders import (
    ICD10,
    LOINC,
    codes,
    compile_for,
    condition,
    evaluation,
    observation,
    quantity,
    valueset,
)

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


# ---------------------------------------------------------------- unknown in, unknown out, for every operator

UNKNOWN = {"var": "absent"}  # a computed value that is unknown (a literal null is folded at compile time)


@pytest.mark.parametrize(
    ("rule", "standard"),
    [
        ({"+": [None, 5]}, 5),
        ({">": [{"+": [None, 5]}, 3]}, True),
        ({"if": [None, "yes", "no"]}, "no"),
        ({"cat": ["CRP ", None]}, "CRP "),
        ({"in": [None, "M96.1"]}, False),
    ],
)
def test_what_the_standard_engine_reads_as_a_value_is_unknown_here(rule: Any, standard: Any) -> None:
    assert compile(rule)(None) == standard
    assert ENGINE.compile(rule)(None) is None


def test_max_of_an_unknown_is_unknown_instead_of_failing_the_plan() -> None:
    with pytest.raises(LogicRuntimeError):
        compile({"max": [None, 3]})(None)
    assert ENGINE.compile({"max": [None, 3]})(None) is None


def test_if_known_lets_the_author_choose_the_branch_for_unknown() -> None:
    rule = {"if_known": [{"var": "a"}, "yes", "no", "not documented"]}
    compiled = ENGINE.compile(rule)
    assert [compiled({"a": value}) for value in (True, 0, None)] == ["yes", "no", "not documented"]
    with pytest.raises(LogicError, match="takes 4 arguments"):
        ENGINE.compile({"if_known": [True, 1, 2]})


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"some": [[1, None], {">": [{"var": ""}, 1]}]}, None),
        ({"some": [[2, None], {">": [{"var": ""}, 1]}]}, True),
        ({"all": [[2, None], {">": [{"var": ""}, 1]}]}, None),
        ({"all": [[0, None], {">": [{"var": ""}, 1]}]}, False),
        ({"none": [[1, None], {">": [{"var": ""}, 1]}]}, None),
        ({"none": [[2, None], {">": [{"var": ""}, 1]}]}, False),
        ({"filter": [[2, None], {">": [{"var": ""}, 1]}]}, None),
        ({"filter": [[2, None], {"is_true": {">": [{"var": ""}, 1]}}]}, [2]),
        ({"map": [[2, None], {"+": [{"var": ""}, 1]}]}, [3, None]),
        ({"all": [[], True]}, False),
    ],
)
def test_iterators_combine_item_answers_the_kleene_way(rule: Any, expected: Any) -> None:
    assert ENGINE.compile(rule)(None) == expected


RECORD_FOR_WALK = [
    condition("c1", "M96.1", recordedDate="2026-01-05"),
    observation(
        "o1",
        effectiveDateTime="2026-10-01",
        valueQuantity=quantity(12, "mg/L"),
        component=[{"code": {"coding": [{"system": LOINC, "code": "1988-5"}]}, "valueInteger": 4}],
    ),
]
SELECT = {"select": ["Condition", "Hardware", "active"]}
LATEST_OBSERVATION = {"latest": {"select": ["Observation", "Crp"]}}
SUM = {"+": [{"var": "current"}, {"var": "accumulator"}]}

# Each operator with arguments under which no other argument decides the answer, and the positions walked
# (None: all of them). The branches of `if` are walked where they are taken.
SAMPLES: dict[str, list[tuple[list[Any], tuple[int, ...] | None]]] = {
    "var": [(["a"], None)],
    "val": [(["a"], None)],
    "and": [([True, 1], None)],
    "or": [([False, 0], None)],
    "if": [([True, 1, 2], (0, 1)), ([False, 1, 2], (2,)), ([False, 1, True, 2, 3], (2, 3))],
    "?:": [([True, 1, 2], (0, 1)), ([False, 1, 2], (2,))],
    "!": [([True], None)],
    "!!": [([True], None)],
    **{op: [([1, 2], None)] for op in COMPARISONS},
    **{op: [([6, 3], None)] for op in ("+", "-", "*", "/", "%", "min", "max")},
    "cat": [(["a", "b"], None)],
    "substr": [(["abc", 1, 1], None)],
    "in": [(["a", ["a"]], None)],
    "merge": [([[1], [2]], None)],
    "map": [([[1, 2], {"var": ""}], None)],
    "filter": [([[1, 2], True], None)],
    "all": [([[1, 2], True], None)],
    "some": [([[1, 2], False], None)],
    "none": [([[1, 2], False], None)],
    "reduce": [([[1, 2], SUM, 0], None)],
    "fact": [(["f"], None)],
    "param": [(["p"], None)],
    "select": [(["Condition", "Hardware", "active"], None)],
    "drafts": [(["Hardware"], None)],
    "draft": [([], None)],
    "hook": [([], None)],
    "criterion": [(["C1"], None)],
    "unmet": [([], None)],
    "within_days": [([SELECT, 400], None)],
    "after": [([SELECT, "2020-01-01"], None)],
    "latest": [([SELECT], None)],
    "earliest": [([SELECT], None)],
    "date": [([LATEST_OBSERVATION], None)],
    "days_since": [(["2026-01-01"], None)],
    "days_between": [(["2026-01-01", "2026-02-01"], None)],
    "count": [([SELECT], None)],
    "dates": [([SELECT], None)],
    "add_days": [(["2026-01-01", 3], None)],
    "span_days": [([SELECT], None)],
    "value": [([LATEST_OBSERVATION, "mg/L"], None)],
    "code_in": [([LATEST_OBSERVATION, "Crp"], None), ([LATEST_OBSERVATION, "Crp", "code"], (0,))],
    "component": [([LATEST_OBSERVATION, "Crp"], None)],
}
QUOTED = {"preserve"}  # its argument is data, never evaluated


def walk_evaluation() -> Any:
    return evaluation(
        RECORD_FOR_WALK,
        facts={"f": 1},
        valuesets={
            "Hardware": valueset("Hardware", include=[codes(ICD10, "M96.1")]),
            "Crp": valueset("Crp", include=[codes(LOINC, "1988-5")]),
        },
        params={"p": 3},
        criteria=[("C1", True, None)],
    )


def run_on(walk: Any, rule: Any) -> Any:
    """Compile as the loader would and evaluate inside the walk's evaluation, on data that has `a`."""
    compiled = compile_for(walk, rule)
    with activated(walk):
        return compiled({"a": 1})


def is_unknown(op: str, value: Any) -> bool:
    if op == "map" and isinstance(value, list):  # element-wise: each item's answer is kept
        return all(item is None for item in value)
    return value is None


def test_the_walk_covers_the_whole_clinical_table() -> None:
    table = set(clinical_engine(Vocabulary(("f",), ("Hardware",), ("p",), ("C1",))).operations)
    assert table == set(SAMPLES) | set(OBSERVERS) | QUOTED
    assert set(STANDARD_OPERATIONS) <= table


@pytest.mark.parametrize("op", sorted(SAMPLES))
def test_unknown_in_any_argument_gives_unknown_out(op: str) -> None:
    walk = walk_evaluation()
    for args, positions in SAMPLES[op]:
        if args:  # the sample itself is known, so an unknown answer below comes from the walked argument
            assert not is_unknown(op, run_on(walk, {op: args})), (op, args)
        for position in range(len(args)) if positions is None else positions:
            rule = {op: [*args[:position], UNKNOWN, *args[position + 1 :]]}
            try:
                result = run_on(walk, rule)
            except LogicError as error:  # a name or type the rule must spell out: checked by validate
                assert "constant" in error.reason, (rule, error)
                continue
            assert is_unknown(op, result), (rule, result)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"known": [UNKNOWN]}, False),
        ({"is_true": [UNKNOWN]}, False),
        ({"??": [UNKNOWN, 2]}, 2),
        ({"var": ["absent", 7]}, 7),
        ({"exists": ["absent"]}, False),
        ({"missing": ["absent"]}, ["absent"]),
        ({"missing_some": [1, ["absent"]]}, ["absent"]),
        ({"try": [{"throw": "x"}, UNKNOWN]}, None),
        ({"preserve": {"var": "absent"}}, {"var": "absent"}),
    ],
)
def test_observers_read_unknown_as_documented(rule: Any, expected: Any) -> None:
    assert ENGINE.compile(rule)({}) == expected


def test_throw_raises_whatever_it_is_given() -> None:
    with pytest.raises(LogicRuntimeError):
        ENGINE.compile({"throw": [UNKNOWN]})({})


DATA_VALUES = [None, 0, 1, 2.5, -3, "", "a", "2", True, False, [], [1, None], {"x": 1}]
SHAPES = [
    {"and": [{"var": "a"}, {"var": "b"}, {"var": "c"}]},
    {"or": [{"var": "a"}, {"var": "b"}, {"var": "c"}]},
    {"if": [{"var": "a"}, {"var": "b"}, {"var": "c"}]},
    {"if_known": [{"var": "a"}, 1, 2, {"var": "b"}]},
    {"!": {"var": "a"}},
    {"!!": [{"var": "a"}]},
    {"??": [{"var": "a"}, {"var": "b"}]},
    {"known": {"var": "a"}},
    {"is_true": {"var": "a"}},
    {"and": [{"is_true": {"var": "a"}}, {"known": {"var": "b"}}]},
    {"<": [{"var": "a"}, 2]},
    {">=": [3, {"var": "a"}]},
    {"==": [{"var": "a"}, "a"]},
    {"===": [{"var": "a"}, {"var": "b"}]},
    {"<": [{"var": "a"}, {"var": "b"}, {"var": "c"}]},
    {"+": [{"var": "a"}, 1]},
    {"cat": [{"var": "a"}, "-", {"var": "b"}]},
    {"in": [{"var": "a"}, ["a", "2"]]},
    {"merge": [{"var": "a"}, [{"var": "b"}]]},
    {"some": [{"var": "a"}, {"var": ""}]},
    {"filter": [{"var": "a"}, {"var": ""}]},
    {"var": ["a", {"var": "b"}]},
    {"var": "x.y"},
]


@pytest.mark.parametrize("rule", SHAPES, ids=[json.dumps(rule) for rule in SHAPES])
def test_generated_code_agrees_with_the_operator_closures(rule: Any) -> None:
    """The emitted Python is the path the service runs; the closures define what it must compute."""
    generated, closure = ENGINE.compile(rule), ENGINE.parse(rule).evaluate
    assert closures(generated) == 0, getattr(generated, "source", None)
    for a, b, c in itertools.product(DATA_VALUES, repeat=3):
        data = {"a": a, "b": b, "c": c, "x": {"y": a}}
        assert outcome(generated, data) == outcome(closure, data), (rule, a, b, c)


def test_the_rule_authoring_page_tells_what_every_operator_does_with_unknown() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text()
    section = page.split("## Three-valued logic", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([^`\s]+)`", row.split(" | ")[0])}
    table = set(clinical_engine(Vocabulary(("f",), ("Hardware",), ("p",), ("C1",))).operations)
    assert documented == table
