"""Rule parsing, compile-time checks and the per-engine operator table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from . import codegen
from .errors import LogicError, LogicRuntimeError
from .nodes import Evaluator, Node, Operation
from .operators import STANDARD_OPERATIONS
from .semantics import as_list

__all__ = ["Engine", "compile_rule"]

_SCALARS = (str, int, float, bool, type(None))
_PLAIN_NAME = re.compile(r"[^.\[\]\s\"']+")
_MAX_DEPTH_CAP = 200


def _op_path(path: str, name: str) -> str:
    return f"{path}.{name}" if _PLAIN_NAME.fullmatch(name) else f"{path}[{json.dumps(name)}]"


class Engine:
    """Compiles JSON-Logic rules against one immutable operator table.

    ``operations`` are added to (or override) the standard operators for this engine only.
    ``max_depth`` bounds rule nesting (checked before recursing, at most 200 so evaluation can never
    exhaust the Python stack) and ``max_nodes`` the number of JSON values in a rule.
    """

    def __init__(
        self,
        operations: Mapping[str, Operation] | None = None,
        max_depth: int = 64,
        max_nodes: int = 20_000,
    ) -> None:
        table = dict(STANDARD_OPERATIONS)
        for name, operation in (operations or {}).items():
            if not isinstance(name, str) or not isinstance(operation, Operation):
                raise TypeError(f"operations must map str to Operation, got {name!r}: {operation!r}")
            table[name] = operation
        if not 1 <= max_depth <= _MAX_DEPTH_CAP:
            raise ValueError(f"max_depth must be between 1 and {_MAX_DEPTH_CAP}")
        if max_nodes < 1:
            raise ValueError("max_nodes must be positive")
        self._operations: Mapping[str, Operation] = MappingProxyType(table)
        self.max_depth = max_depth
        self.max_nodes = max_nodes

    @property
    def operations(self) -> Mapping[str, Operation]:
        """The read-only operator table of this engine."""
        return self._operations

    def extend(self, operations: Mapping[str, Operation]) -> Engine:
        """A new engine with extra or replaced operators; this engine is left unchanged."""
        return Engine({**self._operations, **operations}, self.max_depth, self.max_nodes)

    def compile(self, rule: Any) -> Evaluator:
        """Compile ``rule`` into ``f(data) -> value``; raises ``LogicError`` for rejected rules."""
        return codegen.function(self.parse(rule))

    def parse(self, rule: Any) -> Node:
        """Check ``rule`` and build its node tree (no code generation)."""
        return _Parser(self._operations, self.max_depth, self.max_nodes).node(rule, "$", 1)


class _Parser:
    def __init__(self, operations: Mapping[str, Operation], max_depth: int, max_nodes: int) -> None:
        self.operations = operations
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.count = 0

    def _enter(self, path: str, depth: int) -> None:
        if depth > self.max_depth:
            raise LogicError(f"nesting deeper than max_depth={self.max_depth}", path)
        self.count += 1
        if self.count > self.max_nodes:
            raise LogicError(f"more than max_nodes={self.max_nodes} nodes", path)

    def node(self, rule: Any, path: str, depth: int) -> Node:
        self._enter(path, depth)
        kind = type(rule)
        if kind in _SCALARS:
            return _constant(rule, path)
        if kind is list:
            items = [self.node(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(rule)]
            if all(item.is_constant for item in items):
                return _constant([item.value for item in items], path, rule)
            getters = [item.evaluate for item in items]
            return Node(
                rule,
                path,
                lambda data: [get(data) for get in getters],
                args=items,
                uses_scope=any(item.uses_scope for item in items),
                emit=codegen.emit_list,
            )
        if kind is dict:
            if not rule:
                return _constant({}, path, rule)
            if len(rule) != 1:
                raise LogicError(f"an operator object needs exactly one key, got {len(rule)}", path)
            ((name, raw),) = rule.items()
            if type(name) is not str:
                raise LogicError(f"non-string object key {name!r}", path)
            return self.operator(rule, name, raw, _op_path(path, name), depth)
        raise LogicError(f"non-JSON value of type {kind.__name__}", path)

    def data(self, value: Any, path: str, depth: int) -> Any:
        """Validate quoted data (``preserve``): JSON types only, same depth and size limits."""
        self._enter(path, depth)
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is list:
            return [self.data(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        if kind is dict:
            out = {}
            for key, item in value.items():
                if type(key) is not str:
                    raise LogicError(f"non-string object key {key!r}", path)
                out[key] = self.data(item, _op_path(path, key), depth + 1)
            return out
        raise LogicError(f"non-JSON value of type {kind.__name__}", path)

    def operator(self, rule: dict[str, Any], name: str, raw: Any, path: str, depth: int) -> Node:
        operation = self.operations.get(name)
        if operation is None:
            raise LogicError(f"unknown operator {name!r}", path)
        listed = type(raw) is list
        if operation.quote:
            args = [_constant(self.data(raw, path, depth + 1), path, raw)]
        elif listed:
            args = [self.node(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(raw)]
        elif operation.list_only:
            raise LogicError(
                f"Invalid Arguments: {name!r} needs an array of arguments", path, type="Invalid Arguments"
            )
        else:
            args = [self.node(raw, path, depth + 1)]
        dynamic = operation.spread and not listed and type(raw) is dict and bool(raw)
        if not dynamic and not operation.quote:
            _check_arity(name, operation, len(args), path)
        if dynamic:
            evaluate = _spread_call(operation, args[0].evaluate, path)
        elif operation.func is not None:
            evaluate = _eager_call(operation.func, args)
        else:
            assert operation.build is not None
            evaluate = operation.build(args, path)
        return Node(
            rule,
            path,
            evaluate,
            op=name,
            args=args,
            uses_scope=getattr(evaluate, "uses_scope", False) or any(arg.uses_scope for arg in args),
            kind=operation.kind,
            emit=None if dynamic else operation.emit,
        )


def _constant(value: Any, path: str, rule: Any = None) -> Node:
    return Node(value if rule is None else rule, path, lambda data: value, is_constant=True, value=value)


def _check_arity(name: str, operation: Operation, count: int, path: str) -> None:
    low, high = operation.min_args, operation.max_args
    if count < low or (high is not None and count > high):
        expected = f"{low}" if low == high else f"{low}..{'' if high is None else high}"
        raise LogicError(
            f"Invalid Arguments: {name!r} takes {expected} arguments, got {count}",
            path,
            type="Invalid Arguments",
        )


def _eager_call(func: Callable[..., Any], args: list[Node]) -> Evaluator:
    getters = [arg.evaluate for arg in args]
    if len(getters) == 0:
        return lambda data: func()
    if len(getters) == 1:
        (first,) = getters
        return lambda data: func(first(data))
    if len(getters) == 2:
        first, second = getters
        return lambda data: func(first(data), second(data))
    return lambda data: func(*[get(data) for get in getters])


def _spread_call(operation: Operation, source: Evaluator, path: str) -> Evaluator:
    """``{"op": <rule>}`` for spreading operators: the rule's array result becomes the argument list."""
    func, low, high = operation.func, operation.min_args, operation.max_args
    assert func is not None

    def spread(data: Any) -> Any:
        value = source(data)
        items = as_list(value)
        values = items if items is not None else [value]
        if len(values) < low or (high is not None and len(values) > high):
            raise LogicRuntimeError("Invalid Arguments", path=path)
        return func(*values)

    return spread


_DEFAULT_ENGINE = Engine()


def compile_rule(rule: Any, operations: Mapping[str, Operation] | None = None) -> Evaluator:
    """Compile with the standard operators, plus ``operations`` for this call only."""
    engine = _DEFAULT_ENGINE if not operations else Engine(operations)
    return engine.compile(rule)
