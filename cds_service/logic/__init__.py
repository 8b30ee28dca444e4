"""In-house JSON-Logic compiler: rules compile once into a generated Python function.

>>> from cds_service.logic import compile
>>> compile({"<=": [{"var": "age"}, 65]})({"age": 40})
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .codegen import Emitter, closures
from .compiler import Engine, compile_rule
from .errors import LogicError, LogicRuntimeError
from .nodes import Evaluator, Node, Operation

__all__ = [
    "Emitter",
    "Engine",
    "Evaluator",
    "LogicError",
    "LogicRuntimeError",
    "Node",
    "Operation",
    "closures",
    "compile",
]


def compile(rule: Any, operations: Mapping[str, Operation] | None = None) -> Evaluator:
    """Compile ``rule`` with the standard operators (plus ``operations``); returns ``f(data) -> value``."""
    return compile_rule(rule, operations)
