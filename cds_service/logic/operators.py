"""The standard operator table: builders (closures) plus inline emitters for the hot operators."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from . import codegen, scope
from .codegen import Emitter
from .errors import LogicError, LogicRuntimeError
from .nodes import Evaluator, Node, Operation
from .semantics import (
    add,
    as_list,
    concat,
    contains,
    divide,
    get_item,
    greater,
    greater_equal,
    is_number,
    key_str,
    less,
    less_equal,
    loose_eq,
    maximum,
    merge,
    minimum,
    modulo,
    multiply,
    not_loose_eq,
    not_strict_eq,
    path_exists,
    resolve_path,
    strict_eq,
    substr,
    subtract,
    to_number,
    truthy,
)

__all__ = ["STANDARD_OPERATIONS", "iterate"]

Emitted = tuple[str, str] | None
_SMALL_CHAIN = 8


def _identity(data: Any) -> Any:
    return data


def _scoped(evaluate: Evaluator) -> Evaluator:
    """Mark an evaluator as reading iterator scopes, so enclosing iterators push them."""
    evaluate.uses_scope = True  # type: ignore[attr-defined]
    return evaluate


def _invalid(path: str, reason: str) -> LogicError:
    return LogicError(f"Invalid Arguments: {reason}", path, type="Invalid Arguments")


# ---------------------------------------------------------------- data access: var, val, exists, missing


def _var_parts(path_value: Any) -> list[str] | None:
    """``var`` paths are dotted strings; ``None``/``""`` mean the whole data."""
    if path_value is None or path_value == "":
        return None
    return key_str(path_value).split(".")


def _var_get(data: Any, parts: list[str] | None) -> Any:
    return data if parts is None else resolve_path(data, parts)


def _build_var(args: list[Node], path: str) -> Evaluator:
    if not args:
        return _identity
    path_node = args[0]
    default = args[1].evaluate if len(args) > 1 else None
    if path_node.is_constant:
        parts = _var_parts(path_node.value)
        if parts is None:
            return _identity
        if default is None:
            if len(parts) == 1:
                key = parts[0]
                return lambda data: get_item(data, key)
            return lambda data: resolve_path(data, parts)

        def var_default(data: Any) -> Any:
            value = resolve_path(data, parts)
            return default(data) if value is None else value

        return var_default
    dynamic = path_node.evaluate

    def var_dynamic(data: Any) -> Any:
        value = _var_get(data, _var_parts(dynamic(data)))
        return default(data) if value is None and default is not None else value

    return var_dynamic


def _emit_flat_key(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    """``var``/``val`` with one constant flat key on an exact dict becomes ``d.get(key)``."""
    if not fast or len(node.args) != 1 or not node.args[0].is_constant:
        return None
    key = node.args[0].value
    if type(key) is not str or (node.op == "var" and (not key or "." in key)):
        return None
    em.reads_dict = True
    return f"d.get({em.const(key)})", "any"


def _split_scope(args: list[Node], path: str) -> tuple[int, list[Node]]:
    """Strip a leading ``[n]`` scope-up marker from ``val``/``exists`` arguments."""
    if args and args[0].is_constant and isinstance(args[0].value, list):
        marker = args[0].value
        if len(marker) != 1 or not is_number(marker[0]):
            raise _invalid(args[0].path, "a scope marker must be [number]")
        return abs(int(marker[0])), args[1:]
    return 0, args


def _runtime_parts(value: Any) -> tuple[int, list[Any]]:
    parts = as_list(value)
    if parts is None:
        return 0, [value]
    if parts and isinstance(parts[0], list) and len(parts[0]) == 1 and is_number(parts[0][0]):
        return abs(int(parts[0][0])), parts[1:]
    return 0, parts


def _path_builder(walk: Callable[[Any, Any], Any]) -> Callable[[list[Node], str], Evaluator]:
    """Builder for ``val``/``exists``: path components, optional scope-up marker, dynamic paths."""

    def build(args: list[Node], path: str) -> Evaluator:
        if len(args) == 1 and not args[0].is_constant:
            dynamic = args[0].evaluate

            def walk_dynamic(data: Any) -> Any:
                level, parts = _runtime_parts(dynamic(data))
                return walk(scope.lookup(data, level), parts)

            return _scoped(walk_dynamic)
        level, rest = _split_scope(args, path)
        if all(node.is_constant for node in rest):
            parts = [node.value for node in rest]
            if level:
                return _scoped(lambda data: walk(scope.lookup(data, level), parts))
            if walk is resolve_path and len(parts) == 1:
                key = parts[0]
                return lambda data: get_item(data, key)
            return lambda data: walk(data, parts)
        getters = [node.evaluate for node in rest]

        def walk_computed(data: Any) -> Any:
            return walk(scope.lookup(data, level), [get(data) for get in getters])

        return _scoped(walk_computed) if level else walk_computed

    return build


def _build_missing(args: list[Node], path: str) -> Evaluator:
    getters = [node.evaluate for node in args]

    def missing(data: Any) -> list[Any]:
        keys: list[Any] = []
        for get in getters:
            value = get(data)
            items = as_list(value)
            keys.extend(items if items is not None else [value])
        return [key for key in keys if _is_missing(data, key)]

    return missing


def _is_missing(data: Any, key: Any) -> bool:
    value = _var_get(data, _var_parts(key))
    return value is None or value == ""


def _build_missing_some(args: list[Node], path: str) -> Evaluator:
    need_of, keys_of = args[0].evaluate, args[1].evaluate

    def missing_some(data: Any) -> list[Any]:
        need = to_number(need_of(data))
        value = keys_of(data)
        keys = as_list(value)
        keys = keys if keys is not None else [value]
        missing = [key for key in keys if _is_missing(data, key)]
        return [] if len(keys) - len(missing) >= need else missing

    return missing_some


# ---------------------------------------------------------------- logic: and, or, !, !!, if, ??


def _build_and(args: list[Node], path: str) -> Evaluator:
    getters = [node.evaluate for node in args]

    def and_(data: Any) -> Any:
        value: Any = False
        for get in getters:
            value = get(data)
            if not truthy(value):
                return value
        return value

    return and_


def _build_or(args: list[Node], path: str) -> Evaluator:
    getters = [node.evaluate for node in args]

    def or_(data: Any) -> Any:
        value: Any = False
        for get in getters:
            value = get(data)
            if truthy(value):
                return value
        return value

    return or_


def _emit_and_or(word: str) -> Callable[[Emitter, Node, bool, int], Emitted]:
    def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
        if not node.args:
            return "False", "bool"
        parts = [em.expr(arg, fast, depth) for arg in node.args]
        if all(kind == "bool" for _, kind in parts):
            return "(" + f" {word} ".join(src for src, _ in parts) + ")", "bool"
        if len(parts) > _SMALL_CHAIN:
            return None
        src = parts[-1][0]
        for part, kind in reversed(parts[:-1]):
            tmp = em.tmp()
            test = f"({tmp} := {part})" if kind == "bool" else f"_truthy({tmp} := {part})"
            src = f"({tmp} if not {test} else {src})" if word == "and" else f"({tmp} if {test} else {src})"
        return src, "any"

    return emit


def _build_not(args: list[Node], path: str) -> Evaluator:
    if not args:
        return lambda data: True
    get = args[0].evaluate
    return lambda data: not truthy(get(data))


def _build_double_not(args: list[Node], path: str) -> Evaluator:
    if not args:
        return lambda data: False
    get = args[0].evaluate
    return lambda data: truthy(get(data))


def _emit_not(negate: bool) -> Callable[[Emitter, Node, bool, int], Emitted]:
    def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
        if not node.args:
            return ("True" if negate else "False"), "bool"
        test = em.truth(node.args[0], fast, depth)
        return (f"(not {test})" if negate else test), "bool"

    return emit


def _build_if(args: list[Node], path: str) -> Evaluator:
    if not args:
        return lambda data: None
    if len(args) == 1:
        return args[0].evaluate
    pairs = [(args[i].evaluate, args[i + 1].evaluate) for i in range(0, len(args) - 1, 2)]
    otherwise = args[-1].evaluate if len(args) % 2 else None

    def if_(data: Any) -> Any:
        for test, then in pairs:
            if truthy(test(data)):
                return then(data)
        return otherwise(data) if otherwise is not None else None

    return if_


def _emit_if(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    args = node.args
    if len(args) < 2 or len(args) > 2 * _SMALL_CHAIN:
        return None
    src = em.expr(args[-1], fast, depth)[0] if len(args) % 2 else em.const(None)
    last_pair = len(args) - 1 if len(args) % 2 else len(args)
    for i in reversed(range(0, last_pair, 2)):
        then, _ = em.expr(args[i + 1], fast, depth)
        src = f"({then} if {em.truth(args[i], fast, depth)} else {src})"
    return src, "any"


def _build_coalesce(args: list[Node], path: str) -> Evaluator:
    getters = [node.evaluate for node in args]

    def coalesce(data: Any) -> Any:
        for get in getters:
            value = get(data)
            if value is not None:
                return value
        return None

    return coalesce


# ---------------------------------------------------------------- comparisons


def _chain(test: Callable[[Any, Any], bool]) -> Callable[[list[Node], str], Evaluator]:
    """Comparisons are chained pairwise (``a < b < c``) and stop at the first false pair."""

    def build(args: list[Node], path: str) -> Evaluator:
        if len(args) == 2:
            left, right = args[0].evaluate, args[1].evaluate
            return lambda data: test(left(data), right(data))
        getters = [node.evaluate for node in args]

        def chain(data: Any) -> bool:
            previous = getters[0](data)
            for get in getters[1:]:
                current = get(data)
                if not test(previous, current):
                    return False
                previous = current
            return True

        return chain

    return build


def _plain_scalar_guard(value: Any, tmp: str) -> str | None:
    """A type test under which Python's own operator agrees with the JSON-Logic one."""
    if type(value) is str:
        return f"type({tmp}) is str"
    if type(value) is bool:
        return f"type({tmp}) is bool"
    if type(value) is int or type(value) is float:
        return f"(type({tmp}) is int or type({tmp}) is float)"
    return None


def _emit_compare(
    py_op: str, helper: Callable[[Any, Any], bool], *, numeric_only: bool
) -> Callable[[Emitter, Node, bool, int], Emitted]:
    """Two-argument comparison; against a constant the same-typed case runs as a bare Python operator."""

    def emit(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
        if len(node.args) != 2:
            return None
        left, right = node.args
        left_src, _ = em.expr(left, fast, depth)
        right_src, _ = em.expr(right, fast, depth)
        call = em.ref(helper)
        for const, other_src, const_on_right in ((right, left_src, True), (left, right_src, False)):
            if not const.is_constant or (numeric_only and not is_number(const.value)):
                continue
            tmp = em.tmp()
            guard = _plain_scalar_guard(const.value, tmp)
            if guard is None:
                continue
            const_src = em.const(const.value)
            pair = (tmp, const_src) if const_on_right else (const_src, tmp)
            guard = guard.replace(tmp, f"({tmp} := {other_src})", 1)
            return f"({pair[0]} {py_op} {pair[1]} if {guard} else {call}({pair[0]}, {pair[1]}))", "bool"
        return f"{call}({left_src}, {right_src})", "bool"

    return emit


def _emit_in(em: Emitter, node: Node, fast: bool, depth: int) -> Emitted:
    if len(node.args) != 2:
        return None
    needle, haystack = node.args
    needle_src, _ = em.expr(needle, fast, depth)
    if haystack.is_constant:
        value = haystack.value
        if type(value) is list and all(type(item) is str for item in value):
            tmp = em.tmp()
            return f"(type({tmp} := {needle_src}) is str and {tmp} in {em.ref(frozenset(value))})", "bool"
        if type(value) is str:
            tmp = em.tmp()
            return f"(type({tmp} := {needle_src}) is str and {tmp} in {em.const(value)})", "bool"
    haystack_src, _ = em.expr(haystack, fast, depth)
    return f"{em.ref(contains)}({needle_src}, {haystack_src})", "bool"


# ---------------------------------------------------------------- iterators


def _reject_literal_null(args: list[Node], indexes: tuple[int, ...], path: str) -> None:
    for i in indexes:
        if i < len(args) and args[i].is_constant and args[i].value is None:
            raise _invalid(args[i].path, "null is not allowed here")


def iterate(
    body: Evaluator,
    uses_scope: bool,
    combine: Callable[[Evaluator, list[Any], Callable[[int], None]], Any],
) -> Callable[[Any, list[Any]], Any]:
    """Run ``combine`` over the items, pushing iterator scopes only when the body reads them."""
    if not uses_scope:
        return lambda data, items: combine(body, items, _no_index)

    def run(data: Any, items: list[Any]) -> Any:
        frames = scope.stack()
        frames.append(data)
        frames.append(None)

        def set_index(i: int) -> None:
            frames[-1] = {"index": i}

        try:
            return combine(body, items, set_index)
        finally:
            del frames[-2:]

    return run


def _no_index(i: int) -> None:
    return None


def _map(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> list[Any]:
    if at is _no_index:
        return [body(item) for item in items]
    out = []
    for i, item in enumerate(items):
        at(i)
        out.append(body(item))
    return out


def _filter(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> list[Any]:
    out = []
    for i, item in enumerate(items):
        at(i)
        if truthy(body(item)):
            out.append(item)
    return out


def _any(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> bool:
    for i, item in enumerate(items):
        at(i)
        if truthy(body(item)):
            return True
    return False


def _all(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> bool:
    for i, item in enumerate(items):
        at(i)
        if not truthy(body(item)):
            return False
    return bool(items)


def _build_collect(combine: Callable[..., list[Any]]) -> Callable[[list[Node], str], Evaluator]:
    """``map``/``filter``: a missing or non-array source gives ``[]``."""

    def build(args: list[Node], path: str) -> Evaluator:
        _reject_literal_null(args, (0, 1), path)
        source, run = args[0].evaluate, iterate(codegen.function(args[1]), args[1].uses_scope, combine)

        def collect(data: Any) -> list[Any]:
            items = as_list(source(data))
            return [] if items is None else run(data, items)

        return collect

    return build


def _build_quantifier(combine: Callable[..., bool], negate: bool) -> Callable[[list[Node], str], Evaluator]:
    """``all``/``some``/``none``: the source must be an array (``Invalid Arguments`` otherwise)."""

    def build(args: list[Node], path: str) -> Evaluator:
        _reject_literal_null(args, (0,), path)
        source, run = args[0].evaluate, iterate(codegen.function(args[1]), args[1].uses_scope, combine)

        def quantify(data: Any) -> bool:
            items = as_list(source(data))
            if items is None:
                raise LogicRuntimeError("Invalid Arguments", path=path)
            result = run(data, items)
            return not result if negate else result

        return quantify

    return build


def _build_reduce(args: list[Node], path: str) -> Evaluator:
    _reject_literal_null(args, (0,), path)
    source = args[0].evaluate
    initial = args[2].evaluate if len(args) > 2 else (lambda data: None)

    def fold(body: Evaluator, items: list[Any], at: Callable[[int], None]) -> Any:
        accumulator = items[0]
        for i, item in enumerate(items[1:]):
            at(i)
            accumulator = body({"current": item, "accumulator": accumulator})
        return accumulator

    run = iterate(codegen.function(args[1]), args[1].uses_scope, fold)

    def reduce_(data: Any) -> Any:
        start = initial(data)
        items = as_list(source(data))
        if not items:
            return start
        return run(data, [start, *items])

    return reduce_


# ---------------------------------------------------------------- errors: throw, try; preserve


def _build_throw(args: list[Node], path: str) -> Evaluator:
    get = args[0].evaluate if args else (lambda data: None)

    def throw(data: Any) -> Any:
        value = get(data)
        if isinstance(value, dict):
            raise LogicRuntimeError(value.get("type"), payload=value, path=path)
        raise LogicRuntimeError(value, path=path)

    return throw


def _build_try(args: list[Node], path: str) -> Evaluator:
    if not args:
        return lambda data: None
    first = args[0].evaluate
    handlers = [node.evaluate for node in args[1:]]
    scoped = any(node.uses_scope for node in args[1:])

    def try_(data: Any) -> Any:
        try:
            return first(data)
        except LogicRuntimeError as error:
            failure = error
        frames = scope.stack() if scoped else None
        for handler in handlers:
            if frames is not None:
                frames.append(data)
                frames.append({})
            try:
                return handler(failure.payload)
            except LogicRuntimeError as error:
                failure = error
            finally:
                if frames is not None:
                    del frames[-2:]
        raise failure

    return try_


def _build_preserve(args: list[Node], path: str) -> Evaluator:
    value = args[0].value
    return lambda data: value


# ---------------------------------------------------------------- the table


def _compare_op(py_op: str, helper: Callable[[Any, Any], bool], *, numeric_only: bool = False) -> Operation:
    return Operation(
        build=_chain(helper),
        min_args=2,
        kind="bool",
        emit=_emit_compare(py_op, helper, numeric_only=numeric_only),
    )


_val_build = _path_builder(resolve_path)
_if_op = Operation(build=_build_if, list_only=True, emit=_emit_if)

STANDARD_OPERATIONS: MappingProxyType[str, Operation] = MappingProxyType(
    {
        "var": Operation(build=_build_var, max_args=2, emit=_emit_flat_key),
        "val": Operation(build=_val_build, emit=_emit_flat_key),
        "exists": Operation(build=_path_builder(path_exists), kind="bool"),
        "missing": Operation(build=_build_missing),
        "missing_some": Operation(build=_build_missing_some, min_args=2, max_args=2),
        "and": Operation(build=_build_and, list_only=True, emit=_emit_and_or("and")),
        "or": Operation(build=_build_or, list_only=True, emit=_emit_and_or("or")),
        "if": _if_op,
        "?:": _if_op,
        "!": Operation(build=_build_not, kind="bool", emit=_emit_not(True)),
        "!!": Operation(build=_build_double_not, kind="bool", emit=_emit_not(False)),
        "??": Operation(build=_build_coalesce),
        "==": _compare_op("==", loose_eq),
        "!=": _compare_op("!=", not_loose_eq),
        "===": _compare_op("==", strict_eq),
        "!==": _compare_op("!=", not_strict_eq),
        "<": _compare_op("<", less, numeric_only=True),
        "<=": _compare_op("<=", less_equal, numeric_only=True),
        ">": _compare_op(">", greater, numeric_only=True),
        ">=": _compare_op(">=", greater_equal, numeric_only=True),
        "+": Operation(func=add, spread=True),
        "-": Operation(func=subtract, spread=True, min_args=1),
        "*": Operation(func=multiply, spread=True),
        "/": Operation(func=divide, spread=True, min_args=1),
        "%": Operation(func=modulo, spread=True, min_args=2),
        "min": Operation(func=minimum, spread=True, min_args=1),
        "max": Operation(func=maximum, spread=True, min_args=1),
        "cat": Operation(func=concat, spread=True),
        "substr": Operation(func=substr, min_args=1, max_args=3),
        "in": Operation(func=contains, min_args=2, max_args=2, kind="bool", emit=_emit_in),
        "merge": Operation(func=merge, spread=True),
        "map": Operation(build=_build_collect(_map), min_args=2, max_args=2, list_only=True),
        "filter": Operation(build=_build_collect(_filter), min_args=2, max_args=2, list_only=True),
        "reduce": Operation(build=_build_reduce, min_args=2, max_args=3, list_only=True),
        "all": Operation(build=_build_quantifier(_all, False), min_args=2, max_args=2, list_only=True),
        "some": Operation(build=_build_quantifier(_any, False), min_args=2, max_args=2, list_only=True),
        "none": Operation(build=_build_quantifier(_any, True), min_args=2, max_args=2, list_only=True),
        "throw": Operation(build=_build_throw, max_args=1),
        "try": Operation(build=_build_try),
        "preserve": Operation(build=_build_preserve, quote=True),
    }
)
