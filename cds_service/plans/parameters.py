"""Bounds of the site-tunable parameters of the Libraries.

A parameter is a threshold a site may change (`CDS_PARAMETERS_FILE`), so the Library says how far: every
integer or decimal parameter declares `parameter-min` and `parameter-max` (inclusive, `valueInteger` or
`valueDecimal` as the parameter's type), and a string parameter may list its `parameter-allowed` values
(`valueString`, one extension each). Booleans need nothing. `validate` refuses a numeric parameter without
both bounds, a default outside them, and, at start and on every reload, a site value outside them, so a
typo such as `revision.minDaysSinceFusion = 30` can never reach a card.

Paths are literal JSON paths of the file (`parameter[3].extension[1].valueInteger`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import canonical

NUMERIC = {"integer": "valueInteger", "decimal": "valueDecimal"}


@dataclass(frozen=True, slots=True)
class Bounds:
    """What one parameter may be set to, and the Library file that says so."""

    file: str
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.allowed:
            return f"one of {list(self.allowed)}"
        return f"between {_number(self.minimum)} and {_number(self.maximum)}"

    def admits(self, value: Any) -> bool:
        if self.allowed:
            return value in self.allowed
        low = self.minimum if self.minimum is not None else value
        high = self.maximum if self.maximum is not None else value
        return bool(low <= value <= high)


class ParameterBounds:
    """The bounds of every parameter of a load, declared one Library parameter at a time."""

    def __init__(self) -> None:
        self.declared: dict[str, Bounds] = {}

    def declare(
        self, file: str, where: str, parameter: dict[str, Any], kind: str
    ) -> Iterator[tuple[str, str]]:
        """Read one parameter's bounds; (path, message) for each mistake in them or in its default."""
        key = parameter.get("name")
        where = where.removeprefix("$").removeprefix(".")
        found: dict[str, tuple[str, Any]] = {}
        allowed: list[str] = []
        default: tuple[str, Any] | None = None
        for index, extension in enumerate(parameter.get("extension") or ()):
            url = extension.get("url") if isinstance(extension, dict) else None
            path = f"{where}.extension[{index}]"
            if url == canonical.DEFAULT_VALUE:
                default = next(
                    ((f"{path}.{k}", v) for k, v in extension.items() if k.startswith("value")), None
                )
            elif url in (canonical.PARAMETER_MIN, canonical.PARAMETER_MAX):
                side = "parameter-min" if url == canonical.PARAMETER_MIN else "parameter-max"
                element = NUMERIC.get(kind)
                if element is None:
                    yield (
                        path,
                        f"a {kind} parameter takes no {side}; only integer and decimal ones have bounds",
                    )
                elif side in found:
                    yield path, f"{side} of '{key}' is declared twice"
                elif not _numeric(extension.get(element), kind):
                    yield path, f"{side} of the {kind} parameter '{key}' needs {element}"
                else:
                    found[side] = (f"{path}.{element}", extension[element])
            elif url == canonical.PARAMETER_ALLOWED:
                if kind != "string":
                    yield path, f"a {kind} parameter takes no parameter-allowed; only string ones do"
                elif not isinstance(extension.get("valueString"), str):
                    yield path, f"parameter-allowed of '{key}' needs valueString"
                else:
                    allowed.append(extension["valueString"])
        if kind in NUMERIC:
            missing = [side for side in ("parameter-min", "parameter-max") if side not in found]
            if missing:
                yield (
                    where,
                    f"the {kind} parameter '{key}' needs bounds: add {' and '.join(missing)} "
                    f"({NUMERIC[kind]}) so a site cannot set it to a value the rules were not written for",
                )
                return
            (_, low), (high_path, high) = found["parameter-min"], found["parameter-max"]
            if low > high:
                yield (
                    high_path,
                    f"parameter-max of '{key}' ({_number(high)}) is below its parameter-min ({_number(low)})",
                )
                return
            bounds = Bounds(file, minimum=low, maximum=high)
        elif allowed:
            bounds = Bounds(file, allowed=tuple(allowed))
        else:
            return
        if isinstance(key, str):
            self.declared[key] = bounds
        if default is not None and not bounds.admits(default[1]):
            yield default[0], f"the default of '{key}' ({default[1]!r}) is not {bounds.describe()}"

    def outside(self, key: str, value: Any) -> str | None:
        """Why a site value of parameter `key` is refused, or None when its bounds admit it."""
        bounds = self.declared.get(key)
        if bounds is None or bounds.admits(value):
            return None
        return f"'{key}' = {value!r} is not {bounds.describe()} (its bounds in {bounds.file})"


def _numeric(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "integer" else isinstance(value, int | float)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
