"""Three-valued JSON-Logic for clinical rules: unknown (null) in, unknown out.

Plain JSON-Logic says `{"<=": [null, 120]}` is true, so a criterion would pass when its data is missing.
This engine overrides comparisons and negation to return null when an operand is null, and `and`/`or` to
follow Kleene logic (false wins `and`, true wins `or`, otherwise unknown). Only this engine's table changes;
the standard operators used by `cds_service.logic.compile` stay conformant.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any

from ..logic import Engine, Node, Operation
from ..logic import semantics as js
from ..types import Evaluator
from .vocabulary import Vocabulary


def _compare(test: Callable[[Any, Any], bool]) -> Operation:
    """A comparison over two or more operands, chained pairwise as the standard engine does."""

    def build(args: list[Node], path: str) -> Evaluator:
        functions = [arg.evaluate for arg in args]

        def compare(data: Any) -> bool | None:
            values = [function(data) for function in functions]
            if any(value is None for value in values):
                return None
            return all(test(left, right) for left, right in pairwise(values))

        return compare

    return Operation(build=build, min_args=2)


def _and(args: list[Node], path: str) -> Evaluator:
    functions = [arg.evaluate for arg in args]

    def kleene_and(data: Any) -> Any:
        unknown = False
        value: Any = True
        for function in functions:
            value = function(data)
            if value is None:
                unknown = True
            elif not js.truthy(value):
                return value
        return None if unknown else value

    return kleene_and


def _or(args: list[Node], path: str) -> Evaluator:
    functions = [arg.evaluate for arg in args]

    def kleene_or(data: Any) -> Any:
        unknown = False
        value: Any = False
        for function in functions:
            value = function(data)
            if value is None:
                unknown = True
            elif js.truthy(value):
                return value
        return None if unknown else value

    return kleene_or


def _not(negate: bool) -> Operation:
    def build(args: list[Node], path: str) -> Evaluator:
        function = args[0].evaluate

        def run(data: Any) -> bool | None:
            value = function(data)
            return None if value is None else js.truthy(value) != negate

        return run

    return Operation(build=build, min_args=1, max_args=1)


def _iterator(combine: Callable[[list[Any], Evaluator], Any]) -> Operation:
    """An iterator over a collection that may be unknown: unknown in, unknown out (JSON-Logic raises)."""

    def build(args: list[Node], path: str) -> Evaluator:
        collection, body = args[0].evaluate, args[1].evaluate

        def run(data: Any) -> Any:
            items = collection(data)
            if items is None:
                return None
            return combine(items if isinstance(items, list) else [items], body)

        return run

    return Operation(build=build, min_args=2, max_args=2)


def _merge(args: list[Node], path: str) -> Evaluator:
    """Arrays joined one level deep; unknown if any part is unknown (so "earliest of all care" is honest)."""
    functions = [arg.evaluate for arg in args]

    def merge(data: Any) -> list[Any] | None:
        joined: list[Any] = []
        for function in functions:
            value = function(data)
            if value is None:
                return None
            if isinstance(value, list):
                joined.extend(value)
            else:
                joined.append(value)
        return joined

    return merge


def _is_true(value: Any) -> bool:
    return value is not None and js.truthy(value)


KLEENE = {
    "<": _compare(js.less),
    "<=": _compare(js.less_equal),
    ">": _compare(js.greater),
    ">=": _compare(js.greater_equal),
    "==": _compare(js.loose_eq),
    "!=": _compare(js.not_loose_eq),
    "===": _compare(js.strict_eq),
    "!==": _compare(js.not_strict_eq),
    "and": Operation(build=_and, min_args=1),
    "or": Operation(build=_or, min_args=1),
    "!": _not(negate=True),
    "!!": _not(negate=False),
    "some": _iterator(lambda items, body: any(_is_true(body(item)) for item in items)),
    "all": _iterator(lambda items, body: bool(items) and all(_is_true(body(item)) for item in items)),
    "none": _iterator(lambda items, body: not any(_is_true(body(item)) for item in items)),
    "filter": _iterator(lambda items, body: [item for item in items if _is_true(body(item))]),
    "map": _iterator(lambda items, body: [body(item) for item in items]),
    "merge": Operation(build=_merge),
}


def clinical_engine(vocabulary: Vocabulary) -> Engine:
    """The engine plan definitions compile with: standard operators, three-valued logic, FHIR vocabulary."""
    return Engine(operations={**KLEENE, **vocabulary.operations()})
