"""Turn a compiled node tree into one generated Python function (compiled once per rule).

Only ``repr()`` of exact ``str``/``bool``/small ``int``/finite ``float`` constants and generated
identifiers are written into the source. Every other object (helpers, closures, lists, dicts, ``None``)
is handed over through the ``exec`` namespace, whose builtins are only ``type`` and the JSON type
names.
Anything nested deeper than ``MAX_INLINE_DEPTH`` becomes a generated function of its own, so the source
stays small and never hits the parser's nesting limits. Nodes without an emitter are called as closures
and counted in ``closures`` on the generated function: a rule is fully compiled when that count is 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import semantics
from .nodes import Evaluator, Node

MAX_INLINE_DEPTH = 12
_MAX_INLINE_INT = 10**15

# An emitter returns (python_expression, kind) or None to fall back to calling the node's closure.
Emit = Callable[["Emitter", Node, bool, int], "tuple[str, str] | None"]


class Emitter:
    """Collects namespace entries and fresh names while expressions are generated."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "__builtins__": {
                "type": type,
                "dict": dict,
                "int": int,
                "float": float,
                "str": str,
                "bool": bool,
            },
            "_truthy": semantics.truthy,
        }
        self._refs: dict[int, str] = {}
        self._count = 0
        self.reads_dict = False
        self.closures = 0
        self._nested: dict[int, Evaluator] = {}

    def ref(self, obj: Any) -> str:
        """Bind ``obj`` to a generated name in the namespace and return that name."""
        key = id(obj)
        name = self._refs.get(key)
        if name is None:
            self._count += 1
            name = f"_k{self._count}"
            self._refs[key] = name
            self.namespace[name] = obj
        return name

    def tmp(self) -> str:
        self._count += 1
        return f"_v{self._count}"

    def const(self, value: Any) -> str:
        t = type(value)
        if t is str or t is bool:
            return repr(value)
        if t is int and -_MAX_INLINE_INT < value < _MAX_INLINE_INT:
            return repr(value)
        if t is float and math.isfinite(value):
            return repr(value)
        return self.ref(value)

    def expr(self, node: Node, fast: bool, depth: int) -> tuple[str, str]:
        """Python expression computing ``node`` from the data variable ``d``.

        ``fast`` means the generated code runs in the branch where ``type(d) is dict`` holds.
        """
        if node.is_constant:
            return self.const(node.value), ("bool" if type(node.value) is bool else "any")
        if node.emit is not None:
            if depth >= MAX_INLINE_DEPTH:
                nested = self._nested.get(id(node))
                if nested is None:
                    nested = self._nested[id(node)] = function(node)
                    self.closures += closures(nested)
                return f"{self.ref(nested)}(d)", node.kind
            emitted: tuple[str, str] | None = node.emit(self, node, fast, depth + 1)
            if emitted is not None:
                return emitted
        self.closures += 1
        return f"{self.ref(node.evaluate)}(d)", node.kind

    def truth(self, node: Node, fast: bool, depth: int) -> str:
        """Expression for the JS truthiness of ``node`` as a Python bool."""
        src, kind = self.expr(node, fast, depth)
        return src if kind == "bool" else f"_truthy({src})"


def closures(evaluator: Evaluator) -> int:
    """How many nodes of a compiled rule run as closures instead of generated code (a closure itself: 1)."""
    count: int = getattr(evaluator, "closures", 1)
    return count


def emit_list(em: Emitter, node: Node, fast: bool, depth: int) -> tuple[str, str]:
    """An array literal with computed items: ``[a, b]`` evaluates each item."""
    return "[" + ", ".join(em.expr(item, fast, depth)[0] for item in node.args) + "]", "any"


def function(node: Node) -> Evaluator:
    """Generate ``def _rule(d)`` for ``node``; plain closures are returned as they are."""
    if node.emit is None and not node.is_constant:
        return node.evaluate
    emitter = Emitter()
    fast, _ = emitter.expr(node, True, 0)
    count = emitter.closures  # the slow branch below repeats the same nodes
    if emitter.reads_dict:
        slow, _ = emitter.expr(node, False, 0)
        body = f"    if type(d) is dict:\n        return {fast}\n    return {slow}\n"
    else:
        body = f"    return {fast}\n"
    source = f"def _rule(d):\n{body}"
    code = compile(source, "<json-logic>", "exec")
    exec(code, emitter.namespace)
    generated: Evaluator = emitter.namespace["_rule"]
    generated.source = source  # type: ignore[attr-defined]  # kept for debugging and safety tests
    generated.closures = count  # type: ignore[attr-defined]
    return generated
