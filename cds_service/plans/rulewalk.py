"""Walk a JSON-Logic rule's operators, to find what it reads without running it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk(rule: Any) -> Iterator[tuple[str, list[Any]]]:
    """Every (operator, arguments) pair in `rule`, outermost first; a lone argument becomes a list."""
    if isinstance(rule, dict):
        for operator, args in rule.items():
            yield operator, args if isinstance(args, list) else [args]
            yield from walk(args)
    elif isinstance(rule, list):
        for item in rule:
            yield from walk(item)
