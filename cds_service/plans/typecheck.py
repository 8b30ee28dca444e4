"""What a rule yields, read without running it: catches comparisons that mix numbers and text, and card
summaries that could grow past the CDS Hooks limit once their placeholders are filled.

JSON-Logic coerces quietly (`{">=": [{"count": ...}, "3 sessions"]}` fails every call with NaN, and
`{"==": [{"value": [...]}, "40"]}` compares a score with text), so `validate` refuses both operand kinds in
one comparison. Widths are upper bounds in characters, `None` when a value's text is not bounded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

NUMBER, TEXT, DATE, BOOLEAN, LIST = "number", "text", "date", "boolean", "list"
NUMBER_WIDTH = 7  # a count, a number of days or a score: up to 7 characters ("-1234.5")
UNKNOWN_WIDTH = len("not documented")  # what a placeholder shows when its value is unknown

_NUMERIC = {"count", "days_since", "days_between", "span_days", "+", "-", "*", "/", "%", "min", "max"}
_DATES = {"date", "add_days"}
_BOOLEAN = {"known", "is_true", "!", "!!", "in", "some", "all", "none", "code_in", "criterion", "exists"}
_BOOLEAN |= {"<", "<=", ">", ">=", "==", "!=", "===", "!=="}
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=", "===", "!==")
_BRANCHING = {"if", "?:"}


class RuleTypes:
    """Kinds and widths of the facts and parameters a rule set defines (facts read lazily, cycle-safe)."""

    def __init__(
        self,
        facts: Mapping[str, Any],
        params: Mapping[str, Any],
        maxima: Mapping[str, Any],
        plan_codes: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.facts = facts
        self.params = params
        self.maxima = maxima  # the declared upper bound of a numeric parameter, when it has one
        self.plan_codes = plan_codes or {}  # the criterion codes of each plan, for {"unmet": "plan-id"}
        self._kinds: dict[str, str | None] = {}
        self._widths: dict[str, int | None] = {}
        self._texts: dict[str, frozenset[str] | None] = {}

    # -- kinds ----------------------------------------------------------------------------------------------

    def kind(self, rule: Any) -> str | None:
        if isinstance(rule, bool):
            return BOOLEAN
        if isinstance(rule, int | float):
            return NUMBER
        if isinstance(rule, str):
            return TEXT
        if isinstance(rule, list):
            return LIST
        operator, args = _operation(rule)
        if operator is None:
            return None
        if operator in _NUMERIC:
            return NUMBER
        if operator in _DATES:
            return DATE
        if operator in _BOOLEAN:
            return BOOLEAN
        if operator in {"cat", "substr"}:
            return TEXT
        if operator in {"merge", "filter", "map", "select", "drafts", "within_days", "after", "dates"}:
            return LIST
        if operator == "value" and len(args) > 1:
            return NUMBER  # converted to a unit
        if operator == "param" and args:
            return _kind_of_value(self.params.get(args[0]))
        if operator == "fact" and args and isinstance(args[0], str):
            return self._fact_kind(args[0])
        if operator in _BRANCHING:
            kinds = {self.kind(branch) for branch in _branches(args)}
            return kinds.pop() if len(kinds) == 1 else None
        return None

    def _fact_kind(self, name: str) -> str | None:
        if name not in self._kinds:
            self._kinds[name] = None  # a cycle reads as "not known"; the loader reports cycles itself
            self._kinds[name] = self.kind(self.facts.get(name))
        return self._kinds[name]

    def mixed_comparisons(self, rule: Any, path: str = "$") -> Iterator[tuple[str, str]]:
        """(path in the rule, reason) for each comparison between a number and text or a date."""
        operator, args = _operation(rule)
        if operator is None:
            items = rule if isinstance(rule, list) else ()
            for index, item in enumerate(items):
                yield from self.mixed_comparisons(item, f"{path}[{index}]")
            return
        here = f"{path}.{operator}"
        if operator in _COMPARISONS:
            kinds = {self.kind(arg) for arg in args}
            other = kinds & {TEXT, DATE}
            if NUMBER in kinds and other:
                yield here, f"'{operator}' compares a number with {'a date' if DATE in other else 'text'}"
        for index, arg in enumerate(args):
            yield from self.mixed_comparisons(arg, f"{here}[{index}]")

    # -- widths ---------------------------------------------------------------------------------------------

    def texts(self, rule: Any) -> frozenset[str] | None:
        """Every string the rule can yield (or the strings of the lists it yields), when they are finite."""
        if isinstance(rule, str):
            return frozenset({rule})
        if isinstance(rule, list):
            parts = [self.texts(item) for item in rule]
            return None if any(part is None for part in parts) else frozenset().union(*parts)  # type: ignore[arg-type]
        operator, args = _operation(rule)
        if operator in _BRANCHING or operator == "merge":
            parts = [self.texts(branch) for branch in (_branches(args) if operator in _BRANCHING else args)]
            return None if any(part is None for part in parts) else frozenset().union(*parts)  # type: ignore[arg-type]
        if operator == "filter" and args:
            return self.texts(args[0])
        if operator == "unmet" and args and isinstance(args[0], str):
            return self.plan_codes.get(args[0])
        if operator == "fact" and args and isinstance(args[0], str):
            name = args[0]
            if name not in self._texts:
                self._texts[name] = None
                self._texts[name] = self.texts(self.facts.get(name))
            return self._texts[name]
        return None

    def width(self, rule: Any) -> int | None:
        """The most characters the rule's value can take when shown in a card."""
        kind = self.kind(rule)
        if kind == NUMBER:
            return self._number_width(rule)
        if kind == DATE:
            return max(len("2026-01-01"), UNKNOWN_WIDTH)
        if kind == BOOLEAN:
            return max(len("yes"), UNKNOWN_WIDTH)
        texts = self.texts(rule)
        if texts is None:
            return None
        if kind == LIST or isinstance(rule, list):
            return max(sum(len(text) + 1 for text in texts), UNKNOWN_WIDTH)
        return max([len(text) for text in texts] + [UNKNOWN_WIDTH])

    def _number_width(self, rule: Any) -> int:
        operator, args = _operation(rule)
        if operator == "param" and args and isinstance(self.maxima.get(args[0]), int | float):
            return max(len(str(self.maxima[args[0]])), UNKNOWN_WIDTH)
        if isinstance(rule, int | float):
            return len(str(rule))
        return max(NUMBER_WIDTH, UNKNOWN_WIDTH)


def _operation(rule: Any) -> tuple[str | None, list[Any]]:
    if isinstance(rule, dict) and len(rule) == 1:
        ((operator, args),) = rule.items()
        return operator, args if isinstance(args, list) else [args]
    return None, []


def _branches(args: list[Any]) -> list[Any]:
    """The values an `if` can take: every then-branch and the else-branch (null when there is none)."""
    branches = [args[i] for i in range(1, len(args) - 1, 2)]
    return [*branches, args[-1] if len(args) % 2 else None] if len(args) > 1 else list(args)


def _kind_of_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, str):
        return TEXT
    return None


def summary_width(
    types: RuleTypes, text: str, placeholders: list[str], special: Mapping[str, int | None]
) -> int | None:
    """The longest a card summary can be once filled: its own text plus each placeholder's widest value."""
    total = len(text)
    for name in placeholders:
        if name in special:
            width = special[name]
        elif name in types.facts:
            width = types.width({"fact": name})
        else:
            width = types.width({"param": name})
        if width is None:
            return None
        total += width
    return total
