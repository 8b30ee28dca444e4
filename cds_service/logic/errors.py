"""Exceptions raised by the JSON-Logic compiler and by compiled rules.

Paths point into the rule with a small JSON-path dialect: ``$`` is the rule itself, ``.op`` enters the
operator ``op`` of an object (``["op"]`` when the name contains ``.``, ``[``, ``]``, quotes or spaces) and
``[i]`` selects the i-th argument or list element. Example: ``$.and[1].<=[0]``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LogicError", "LogicRuntimeError"]


class LogicError(Exception):
    """A rule was rejected while compiling (unknown operator, arity, limits, non-JSON value).

    ``type`` is the JSON-Logic error type when one applies (arity problems are ``"Invalid Arguments"``,
    as the community suites expect), otherwise ``None``.
    """

    def __init__(self, reason: str, path: str = "$", *, type: Any = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.type = type


class LogicRuntimeError(LogicError):
    """A compiled rule failed while evaluating: ``NaN``, ``Invalid Arguments`` or a ``throw``.

    ``type`` is the JSON-Logic error type (for ``throw`` the thrown value, or its ``"type"`` key when an
    object was thrown) and ``payload`` the error object that a ``try`` handler sees as its data.
    """

    def __init__(self, type: Any, payload: dict[str, Any] | None = None, path: str = "$") -> None:
        super().__init__(f"error {type!r}", path, type=type)
        self.payload: dict[str, Any] = payload if payload is not None else {"type": type}
