"""Compiled rule nodes and the ``Operation`` descriptor used to define operators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..types import Evaluator

__all__ = ["Builder", "Evaluator", "Node", "Operation"]

Builder = Callable[[list["Node"], str], Evaluator]


class Node:
    """One compiled argument as seen by a builder ``Operation``.

    ``evaluate(data)`` computes the argument, ``rule`` is its raw JSON, ``is_constant``/``value`` let a
    builder pre-resolve literal arguments, and ``path`` locates it in the rule for error messages.
    """

    __slots__ = (
        "args",
        "emit",
        "evaluate",
        "is_constant",
        "kind",
        "op",
        "path",
        "rule",
        "uses_scope",
        "value",
    )

    def __init__(
        self,
        rule: Any,
        path: str,
        evaluate: Evaluator,
        *,
        is_constant: bool = False,
        value: Any = None,
        op: str | None = None,
        args: list[Node] | None = None,
        uses_scope: bool = False,
        kind: str = "any",
        emit: Any = None,
    ) -> None:
        self.rule = rule
        self.path = path
        self.evaluate = evaluate
        self.is_constant = is_constant
        self.value = value
        self.op = op
        self.args: list[Node] = args or []
        # True when evaluation reads enclosing iterator scopes (``val`` with ``[[n], ...]``).
        self.uses_scope = uses_scope
        # "bool" when the result is always a Python bool, which lets generated code skip truthiness calls.
        self.kind = kind
        self.emit = emit

    def __repr__(self) -> str:
        return f"Node({self.path}, op={self.op!r}, constant={self.is_constant})"


@dataclass(frozen=True, slots=True)
class Operation:
    """An operator definition; give exactly one of ``func`` or ``build``.

    * ``func``: eager. All arguments are evaluated and ``func(*values)`` is called.
    * ``build``: compile-time builder. ``build(args, path)`` receives the argument ``Node`` objects and
      returns ``data -> value``; it may raise ``LogicError`` for bad constant arguments and decides itself
      when (and whether) to evaluate each argument, so lazy operators are possible.

    ``min_args``/``max_args`` are checked at compile time. ``list_only`` rejects a non-array argument
    (``{"op": 5}``) instead of treating it as ``[5]``. ``spread`` (eager only) makes ``{"op": <rule>}``
    apply ``func`` to the items of the array the rule produces. ``quote`` passes the raw argument as one
    constant ``Node`` without compiling it (for ``preserve``-style operators).
    """

    func: Callable[..., Any] | None = None
    build: Builder | None = None
    min_args: int = 0
    max_args: int | None = None
    list_only: bool = False
    spread: bool = False
    quote: bool = False
    # Internal hooks for the standard table: result kind and inline code emitter (see codegen.py).
    kind: str = "any"
    emit: Any = None

    def __post_init__(self) -> None:
        if (self.func is None) == (self.build is None):
            raise TypeError("Operation needs exactly one of func= or build=")
        if self.spread and self.func is None:
            raise TypeError("spread=True needs func=")
        if self.min_args < 0 or (self.max_args is not None and self.max_args < self.min_args):
            raise ValueError("invalid min_args/max_args")
