"""Three-valued JSON-Logic for clinical rules: unknown (null) in, unknown out, for every operator.

Plain JSON-Logic reads null as 0 or false: `{"<=": [null, 120]}` is true and `{"+": [null, 5]}` is 5, so a
criterion would pass on missing data. The clinical table replaces every standard operator:

* eager operators (arithmetic, comparisons, strings, arrays, `min`/`max`, `in`, `merge`, and the FHIR
  vocabulary's own) are unknown when any argument is unknown;
* `and`/`or`/`!`/`!!` follow Kleene's logic; `if` with an unknown condition is unknown, and `if_known`
  lets the author choose the branch for that case;
* iterators over an unknown collection are unknown; `some`/`all`/`none` combine the items' answers the
  Kleene way, `filter` is unknown when any item's test is, `map` keeps each item's answer;
* only the operators in `OBSERVERS` look at unknown itself and answer something definite.

Truth is defined here once (`truth`, `is_true`). Every operator gets an emitter, so facts and plan
expressions compile to one Python function each; the standard engine keeps its own table, untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Any

from ..logic import Emitter, LogicRuntimeError, Node, Operation, closures
from ..logic import semantics as js
from ..logic.codegen import function as generate
from ..logic.operators import STANDARD_OPERATIONS, iterate
from ..types import Evaluator

__all__ = ["OBSERVERS", "clinical_operations", "is_true", "truth"]

Emitted = tuple[str, str] | None
Emit = Callable[[Emitter, Node, bool, int], Emitted]
_LONG_CHAIN = 16

# Operators that read unknown itself, and which argument positions they read it in (None: all of them).
OBSERVERS: Mapping[str, frozenset[int] | None] = {
    "known": None,
    "is_true": None,
    "if_known": frozenset({0}),
    "??": None,
    "var": frozenset({1}),
    "exists": None,
    "missing": None,
    "missing_some": None,
    "try": None,
    "throw": None,
}


def truth(value: Any) -> bool | None:
    """The truth of a value: unknown stays unknown, anything else has JSON-Logic truthiness."""
    return None if value is None else js.truthy(value)


def is_true(value: Any) -> bool:
    """Known and truthy: what switches a card or a suggestion on."""
    return value is not None and js.truthy(value)


# ---------------------------------------------------------------- eager operators: unknown in, unknown out


def strict(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` over its evaluated arguments, or unknown as soon as one of them is unknown."""

    def strict_call(*values: Any) -> Any:
        for value in values:
            if value is None:
                return None
        return func(*values)

    return strict_call


def _emit_strict(func: Callable[..., Any]) -> Emit:
    """``(None if (a := A) is None | (b := B) is None else f(a, b))``: every argument is evaluated once."""

    def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
        names, unknown = [], []
        for arg in node.args:
            if arg.is_constant and arg.value is None:
                return "None", "any"
            src, kind = em.expr(arg, fast, depth)
            if arg.is_constant or kind == "bool":
                names.append(src)
                continue
            tmp = em.tmp()
            names.append(tmp)
            unknown.append(f"(({tmp} := {src}) is None)")
        call = f"{em.ref(func)}({', '.join(names)})"
        return (f"(None if {' | '.join(unknown)} else {call})" if unknown else call), "any"

    return emit


def _eager(func: Callable[..., Any], **arity: Any) -> Operation:
    return Operation(func=strict(func), emit=_emit_strict(func), **arity)


def _chain(test: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    """A comparison over two or more operands, chained pairwise (``a < b < c``) as the standard engine."""
    return lambda *values: all(test(left, right) for left, right in pairwise(values))


def _scalar_guard(value: Any, tmp: str, numeric_only: bool) -> str | None:
    """A type test under which Python's own operator agrees with the JSON-Logic one."""
    if type(value) is int or type(value) is float:
        return f"(type({tmp}) is int or type({tmp}) is float)"
    if numeric_only:
        return None
    if type(value) is str:
        return f"type({tmp}) is str"
    if type(value) is bool:
        return f"type({tmp}) is bool"
    return None


def _comparison(py_op: str, test: Callable[[Any, Any], bool], numeric_only: bool = False) -> Operation:
    """Against a constant, the same-typed case runs as a bare Python operator."""
    chained = _chain(test)
    general = _emit_strict(chained)

    def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
        if len(node.args) == 2:
            left, right = node.args
            for const, other, const_right in ((right, left, True), (left, right, False)):
                if not const.is_constant or other.is_constant:
                    continue
                tmp = em.tmp()
                guard = _scalar_guard(const.value, tmp, numeric_only)
                if guard is None:
                    continue
                src, _ = em.expr(other, fast, depth)
                value = em.const(const.value)
                a, b = (tmp, value) if const_right else (value, tmp)
                decide = f"({a} {py_op} {b} if {guard} else {em.ref(test)}({a}, {b}))"
                return f"(None if ({tmp} := {src}) is None else {decide})", "any"
        return general(em, node, fast, depth)

    return Operation(func=strict(chained), emit=emit, min_args=2)


# ---------------------------------------------------------------- logic: and, or, !, !!, if, if_known, ??


def _build_and(args: list[Node], path: str) -> Evaluator:
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


def _build_or(args: list[Node], path: str) -> Evaluator:
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


def _emit_junction(word: str) -> Emit:
    """Nested conditionals that stop at the first deciding operand and remember whether one was unknown."""

    def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
        if len(node.args) > _LONG_CHAIN:
            return None
        parts = [(em.tmp(), *em.expr(arg, fast, depth)) for arg in node.args]
        unknown = [f"{tmp} is None" for tmp, _, kind in parts if kind != "bool"]
        tmp, _, _ = parts[-1]
        src = f"(None if {' or '.join(unknown)} else {tmp})" if unknown else tmp
        for tmp, part, kind in reversed(parts):
            if word == "and":
                decides = (
                    f"not ({tmp} := {part})"
                    if kind == "bool"
                    else (f"({tmp} := {part}) is not None and not _truthy({tmp})")
                )
            else:
                decides = f"({tmp} := {part})" if kind == "bool" else f"_truthy({tmp} := {part})"
            src = f"({tmp} if {decides} else {src})"
        kind = "bool" if all(kind == "bool" for _, _, kind in parts) else "any"
        return src, kind

    return emit


def _negation(negate: bool) -> Operation:
    def apply(value: Any) -> bool:
        return js.truthy(value) != negate

    def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
        src, kind = em.expr(node.args[0], fast, depth)
        if kind == "bool":
            return (f"(not {src})" if negate else src), "bool"
        tmp = em.tmp()
        test = f"not _truthy({tmp})" if negate else f"_truthy({tmp})"
        return f"(None if ({tmp} := {src}) is None else {test})", "any"

    return Operation(func=strict(apply), emit=emit, min_args=1, max_args=1)


def _build_if(args: list[Node], path: str) -> Evaluator:
    if not args:
        return lambda data: None
    if len(args) == 1:
        return args[0].evaluate
    pairs = [(args[i].evaluate, args[i + 1].evaluate) for i in range(0, len(args) - 1, 2)]
    otherwise = args[-1].evaluate if len(args) % 2 else None

    def kleene_if(data: Any) -> Any:
        for test, then in pairs:
            condition = test(data)
            if condition is None:
                return None
            if js.truthy(condition):
                return then(data)
        return otherwise(data) if otherwise is not None else None

    return kleene_if


def _emit_choice(
    em: Emitter, condition: Node, then: str, otherwise: str, unknown: str, fast: bool, depth: int
) -> str:
    src, kind = em.expr(condition, fast, depth)
    if kind == "bool":
        return f"({then} if {src} else {otherwise})"
    tmp = em.tmp()
    return f"({unknown} if ({tmp} := {src}) is None else ({then} if _truthy({tmp}) else {otherwise}))"


def _emit_if(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    args = node.args
    if not args:
        return "None", "any"
    if len(args) == 1:
        return em.expr(args[0], fast, depth)
    if len(args) > 2 * _LONG_CHAIN:
        return None
    src = em.expr(args[-1], fast, depth)[0] if len(args) % 2 else "None"
    last_pair = len(args) - 1 if len(args) % 2 else len(args)
    for i in reversed(range(0, last_pair, 2)):
        then, _ = em.expr(args[i + 1], fast, depth)
        src = _emit_choice(em, args[i], then, src, "None", fast, depth)
    return src, "any"


def _build_if_known(args: list[Node], path: str) -> Evaluator:
    condition, then, otherwise, unknown = (arg.evaluate for arg in args)

    def if_known(data: Any) -> Any:
        value = condition(data)
        if value is None:
            return unknown(data)
        return then(data) if js.truthy(value) else otherwise(data)

    return if_known


def _emit_if_known(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    condition, then, otherwise, unknown = node.args
    when_true, when_false, when_unknown = (em.expr(arg, fast, depth)[0] for arg in (then, otherwise, unknown))
    return _emit_choice(em, condition, when_true, when_false, when_unknown, fast, depth), "any"


def _build_coalesce(args: list[Node], path: str) -> Evaluator:
    functions = [arg.evaluate for arg in args]

    def coalesce(data: Any) -> Any:
        for function in functions:
            value = function(data)
            if value is not None:
                return value
        return None

    return coalesce


def _emit_coalesce(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    if not node.args:
        return "None", "any"
    if len(node.args) > _LONG_CHAIN:
        return None
    src = em.expr(node.args[-1], fast, depth)[0]
    for arg in reversed(node.args[:-1]):
        part, _ = em.expr(arg, fast, depth)
        tmp = em.tmp()
        src = f"({tmp} if ({tmp} := {part}) is not None else {src})"
    return src, "any"


def _known(value: Any) -> bool:
    return value is not None


def _emit_known(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    src, kind = em.expr(node.args[0], fast, depth)
    return ("True" if kind == "bool" else f"({src} is not None)"), "bool"


def _emit_is_true(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    src, kind = em.expr(node.args[0], fast, depth)
    if kind == "bool":
        return src, "bool"
    tmp = em.tmp()
    return f"(({tmp} := {src}) is not None and _truthy({tmp}))", "bool"


# ---------------------------------------------------------------- iterators


def _items(value: Any) -> list[Any]:
    """A collection, or a single item read as a collection of one (a fact may hold one resource)."""
    items = js.as_list(value)
    return items if items is not None else [value]


def _some(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> bool | None:
    unknown = False
    for index, item in enumerate(items):
        at(index)
        value = body(item)
        if value is None:
            unknown = True
        elif js.truthy(value):
            return True
    return None if unknown else False


def _all(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> bool | None:
    unknown = False
    for index, item in enumerate(items):
        at(index)
        value = body(item)
        if value is None:
            unknown = True
        elif not js.truthy(value):
            return False
    return None if unknown else bool(items)


def _none(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> bool | None:
    found = _some(body, items, at)
    return None if found is None else not found


def _filter(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> list[Any] | None:
    kept = []
    for index, item in enumerate(items):
        at(index)
        value = body(item)
        if value is None:
            return None
        if js.truthy(value):
            kept.append(item)
    return kept


def _map(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> list[Any]:
    mapped = []
    for index, item in enumerate(items):
        at(index)
        mapped.append(body(item))
    return mapped


def _iterator(combine: Callable[[Evaluator, list[Any], Callable[[int], None]], Any]) -> Operation:
    def build(args: list[Node], path: str) -> Evaluator:
        source, run = args[0].evaluate, iterate(generate(args[1]), args[1].uses_scope, combine)

        def iterator(data: Any) -> Any:
            collection = source(data)
            return None if collection is None else run(data, _items(collection))

        return iterator

    return Operation(build=build, min_args=2, max_args=2, list_only=True)


def _build_reduce(args: list[Node], path: str) -> Evaluator:
    fold = STANDARD_OPERATIONS["reduce"].build
    assert fold is not None
    known = [arg.evaluate for position, arg in enumerate(args) if position != 1]
    reduce_ = fold(args, path)

    def kleene_reduce(data: Any) -> Any:
        if any(value(data) is None for value in known):
            return None
        return reduce_(data)

    return kleene_reduce


# ---------------------------------------------------------------- data access and errors


def _unknown_path(standard: Operation, positions: Callable[[list[Node]], list[Node]]) -> Operation:
    """A standard data-access operator whose computed path components make it unknown when unknown."""
    build = standard.build
    assert build is not None

    def wrapped(args: list[Node], path: str) -> Evaluator:
        lookup = build(args, path)
        computed = [arg.evaluate for arg in positions(args) if not arg.is_constant]
        if not computed:
            return lookup

        def read(data: Any) -> Any:
            if any(part(data) is None for part in computed):
                return None
            return lookup(data)

        read.uses_scope = getattr(lookup, "uses_scope", False)  # type: ignore[attr-defined]
        return read

    return dataclasses.replace(standard, build=wrapped, emit=None)


def _emit_var(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    """The whole datum (``{"var": ""}``, the current item in an iterator) and flat keys are inline."""
    args = node.args
    if not args or (len(args) == 1 and args[0].is_constant and args[0].value in (None, "", [])):
        return "d", "any"
    key = args[0].value if args and args[0].is_constant else None
    if len(args) == 1 and fast and type(key) is str and key and "." not in key:
        em.reads_dict = True
        return f"d.get({em.const(key)})", "any"
    return None


def _thrower(path: str) -> Callable[[Any], Any]:
    def throw(value: Any) -> Any:
        if isinstance(value, dict):
            raise LogicRuntimeError(value.get("type"), payload=value, path=path)
        raise LogicRuntimeError(value, path=path)

    return throw


def _emit_throw(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    src = em.expr(node.args[0], fast, depth)[0] if node.args else "None"
    return f"{em.ref(_thrower(node.path))}({src})", "any"


def _emit_preserve(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    return em.const(node.args[0].value), "any"


# ---------------------------------------------------------------- the table


def _compiled_call(build: Callable[[list[Node], str], Evaluator]) -> Emit:
    """For builders: rebuild the operator over generated functions of its arguments and call it.

    Each computed argument becomes a generated function of its own, so nothing runs as an interpreted
    closure; the operator's own code is the builder's, shared with the closure path.
    """

    def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
        compiled = []
        for arg in node.args:
            if arg.is_constant:
                compiled.append(arg)
                continue
            evaluate = generate(arg)
            em.closures += closures(evaluate)
            compiled.append(Node(arg.rule, arg.path, evaluate, op=arg.op, uses_scope=arg.uses_scope))
        return f"{em.ref(build(compiled, node.path))}(d)", node.kind

    return emit


def _with_emitter(name: str, operation: Operation) -> Operation:
    """An operator as the clinical engine runs it: strict unless it observes unknown, always emitted."""
    if operation.func is not None and operation.emit is None:
        if name in OBSERVERS:
            raise TypeError(f"observer '{name}' needs its own emitter")
        return dataclasses.replace(operation, func=strict(operation.func), emit=_emit_strict(operation.func))
    if operation.build is not None:
        inline = operation.emit
        generic = _compiled_call(operation.build)

        def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
            emitted: Emitted = inline(em, node, fast, depth) if inline is not None else None
            return emitted if emitted is not None else generic(em, node, fast, depth)

        return dataclasses.replace(operation, emit=emit)
    return operation


def _rest(args: list[Node]) -> list[Node]:
    return args


def _path_only(args: list[Node]) -> list[Node]:
    return args[:1]


_if = Operation(build=_build_if, list_only=True, emit=_emit_if)

_KLEENE: dict[str, Operation] = {
    "var": dataclasses.replace(_unknown_path(STANDARD_OPERATIONS["var"], _path_only), emit=_emit_var),
    "val": _unknown_path(STANDARD_OPERATIONS["val"], _rest),
    "exists": STANDARD_OPERATIONS["exists"],
    "missing": STANDARD_OPERATIONS["missing"],
    "missing_some": STANDARD_OPERATIONS["missing_some"],
    "and": Operation(build=_build_and, list_only=True, min_args=1, emit=_emit_junction("and")),
    "or": Operation(build=_build_or, list_only=True, min_args=1, emit=_emit_junction("or")),
    "if": _if,
    "?:": _if,
    "if_known": Operation(build=_build_if_known, list_only=True, min_args=4, max_args=4, emit=_emit_if_known),
    "!": _negation(negate=True),
    "!!": _negation(negate=False),
    "??": Operation(build=_build_coalesce, emit=_emit_coalesce),
    "known": Operation(func=_known, min_args=1, max_args=1, kind="bool", emit=_emit_known),
    "is_true": Operation(func=is_true, min_args=1, max_args=1, kind="bool", emit=_emit_is_true),
    "==": _comparison("==", js.loose_eq),
    "!=": _comparison("!=", js.not_loose_eq),
    "===": _comparison("==", js.strict_eq),
    "!==": _comparison("!=", js.not_strict_eq),
    "<": _comparison("<", js.less, numeric_only=True),
    "<=": _comparison("<=", js.less_equal, numeric_only=True),
    ">": _comparison(">", js.greater, numeric_only=True),
    ">=": _comparison(">=", js.greater_equal, numeric_only=True),
    "+": _eager(js.add, spread=True),
    "-": _eager(js.subtract, spread=True, min_args=1),
    "*": _eager(js.multiply, spread=True),
    "/": _eager(js.divide, spread=True, min_args=1),
    "%": _eager(js.modulo, spread=True, min_args=2),
    "min": _eager(js.minimum, spread=True, min_args=1),
    "max": _eager(js.maximum, spread=True, min_args=1),
    "cat": _eager(js.concat, spread=True),
    "substr": _eager(js.substr, min_args=1, max_args=3),
    "in": _eager(js.contains, min_args=2, max_args=2),
    "merge": _eager(js.merge, spread=True),
    "map": _iterator(_map),
    "filter": _iterator(_filter),
    "all": _iterator(_all),
    "some": _iterator(_some),
    "none": _iterator(_none),
    "reduce": Operation(build=_build_reduce, min_args=2, max_args=3, list_only=True),
    "throw": dataclasses.replace(STANDARD_OPERATIONS["throw"], emit=_emit_throw),
    "try": STANDARD_OPERATIONS["try"],
    "preserve": dataclasses.replace(STANDARD_OPERATIONS["preserve"], emit=_emit_preserve),
}


def clinical_operations(vocabulary: Mapping[str, Operation]) -> dict[str, Operation]:
    """Every standard operator in its three-valued form, plus the vocabulary's, all with emitters."""
    table = {**_KLEENE, **vocabulary}
    return {name: _with_emitter(name, operation) for name, operation in table.items()}
