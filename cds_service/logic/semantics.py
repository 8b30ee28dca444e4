"""JS-faithful value semantics shared by the operators and by generated code.

The rules follow the JSON-Logic community suites: ``null``/``""`` count as 0 and booleans as 0/1 in
arithmetic, anything else that is not a number-like string is a ``NaN`` error, ``[]`` is falsy and
``{}`` truthy, strings compare as strings, and ``%`` keeps the sign of the dividend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .errors import LogicRuntimeError

_INT_RE = re.compile(r"[+-]?[0-9]+")
_NUM_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_SAFE = 2**53


def nan_error() -> LogicRuntimeError:
    return LogicRuntimeError("NaN")


def invalid_arguments() -> LogicRuntimeError:
    return LogicRuntimeError("Invalid Arguments")


def is_number(x: Any) -> bool:
    """True for int/float values that are not booleans (``True`` is an ``int`` in Python)."""
    return (type(x) is int or type(x) is float) or (isinstance(x, int | float) and not isinstance(x, bool))


def as_list(x: Any) -> list[Any] | None:
    """Return ``x`` as a list when it is a JSON array (any non-string sequence), else ``None``."""
    if type(x) is list:
        return x
    if isinstance(x, Sequence) and not isinstance(x, str | bytes | bytearray):
        return list(x)
    return None


def truthy(x: Any) -> bool:
    """JavaScript truthiness with JSON-Logic's exception that ``[]`` is falsy; ``{}`` is truthy."""
    t = type(x)
    if t is bool:
        flag: bool = x
        return flag
    if t is dict:
        return True
    if t is int or t is float or t is str or t is list:
        return bool(x)
    if x is None:
        return False
    if isinstance(x, Mapping):
        return True
    if isinstance(x, float) and math.isnan(x):
        return False
    return bool(x)


def to_number(x: Any) -> int | float:
    """ToNumber for arithmetic and comparisons; raises the ``NaN`` error instead of returning NaN."""
    t = type(x)
    if t is int or t is float:
        number: int | float = x
        return number
    if t is bool:
        return int(x)
    if x is None:
        return 0
    if isinstance(x, str):
        if not x:
            return 0
        if _INT_RE.fullmatch(x):
            return int(x)
        if _NUM_RE.fullmatch(x):
            f = float(x)
            if math.isfinite(f):
                return f
        raise nan_error()
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int | float):
        return x
    raise nan_error()


def normalize_number(x: int | float) -> int | float:
    """Integral float results (``4 / 2``) become ints again: JSON has a single number type."""
    if type(x) is float and x.is_integer() and -_MAX_SAFE <= x <= _MAX_SAFE:
        return int(x)
    return x


def number_str(x: int | float) -> str:
    """Format a number the way JavaScript's ``String(n)`` does."""
    if isinstance(x, int):
        return str(int(x))
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    if "e" not in text:
        return text
    mantissa, exp_text = text.split("e")
    exp = int(exp_text)
    if -7 < exp < 21:
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if exp > 0 else '-'}{abs(exp)}"


def cat_str(x: Any) -> str:
    """String conversion used by ``cat``/``substr``: like JS ``Array.join``, ``null`` becomes ``""``."""
    t = type(x)
    if t is str:
        text: str = x
        return text
    if x is None:
        return ""
    if t is bool:
        return "true" if x else "false"
    if t is int or t is float:
        return number_str(x)
    if isinstance(x, str):
        return str.__str__(x)
    if isinstance(x, Mapping):
        return "[object Object]"
    items = as_list(x)
    if items is not None:
        return ",".join(cat_str(item) for item in items)
    if isinstance(x, int | float):
        return number_str(x)
    return str(x)


def key_str(x: Any) -> str:
    """Object key for a path component (numbers formatted as in JS, ``1`` -> ``"1"``)."""
    return x if type(x) is str else cat_str(x)


# ---------------------------------------------------------------- equality and ordering


def loose_eq(a: Any, b: Any) -> bool:
    """``==``: same-typed scalars compare directly, otherwise both sides go through ToNumber.

    Deviations from JS that the suites require: arrays/objects raise ``NaN``, and ``null == 0`` is true.
    ``null`` or a boolean against a non-numeric string is simply false.
    """
    ta, tb = type(a), type(b)
    if ta is tb and (ta is str or ta is int or ta is float or ta is bool):
        same: bool = a == b
        return same
    if a is None or b is None:
        other = b if a is None else a
        if other is None:
            return True
        if isinstance(other, str):
            return _soft_number(other) == 0
        return to_number(other) == 0
    if isinstance(a, bool) and isinstance(b, str):
        return _soft_number(b) == int(a)
    if isinstance(b, bool) and isinstance(a, str):
        return _soft_number(a) == int(b)
    if isinstance(a, str) and isinstance(b, str):
        return str.__eq__(a, b)
    return to_number(a) == to_number(b)


def _soft_number(s: str) -> int | float | None:
    try:
        return to_number(s)
    except LogicRuntimeError:
        return None


def strict_eq(a: Any, b: Any) -> bool:
    """``===`` with JSON types: booleans never equal numbers, arrays/objects compare by content."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x == y):
                return False
        elif x is None or y is None:
            if x is not y:
                return False
        elif isinstance(x, str) or isinstance(y, str):
            if not (isinstance(x, str) and isinstance(y, str) and x == y):
                return False
        elif isinstance(x, int | float) or isinstance(y, int | float):
            if not (isinstance(x, int | float) and isinstance(y, int | float) and x == y):
                return False
        elif isinstance(x, Mapping) or isinstance(y, Mapping):
            if not (isinstance(x, Mapping) and isinstance(y, Mapping) and x.keys() == y.keys()):
                return False
            stack.extend((x[k], y[k]) for k in x)
        else:
            xs, ys = as_list(x), as_list(y)
            if xs is None or ys is None or len(xs) != len(ys):
                return False
            stack.extend(zip(xs, ys, strict=True))
    return True


def less(a: Any, b: Any) -> bool:
    if type(a) is str and type(b) is str:
        return a < b
    return to_number(a) < to_number(b)


def less_equal(a: Any, b: Any) -> bool:
    if type(a) is str and type(b) is str:
        return a <= b
    return to_number(a) <= to_number(b)


def greater(a: Any, b: Any) -> bool:
    return less(b, a)


def greater_equal(a: Any, b: Any) -> bool:
    return less_equal(b, a)


def not_loose_eq(a: Any, b: Any) -> bool:
    return not loose_eq(a, b)


def not_strict_eq(a: Any, b: Any) -> bool:
    return not strict_eq(a, b)


def contains(needle: Any, haystack: Any) -> bool:
    """``in``: strict membership in an array, substring test in a string, otherwise false."""
    if isinstance(haystack, str):
        return isinstance(needle, str) and needle in haystack
    items = as_list(haystack)
    if items is None:
        return False
    if type(needle) is str:
        return needle in items
    return any(strict_eq(needle, item) for item in items)


# ---------------------------------------------------------------- arithmetic


def add(*xs: Any) -> int | float:
    total: int | float = 0
    for x in xs:
        total += to_number(x)
    return total


def multiply(*xs: Any) -> int | float:
    product: int | float = 1
    for x in xs:
        product *= to_number(x)
    return product


def subtract(*xs: Any) -> int | float:
    if not xs:
        raise invalid_arguments()
    if len(xs) == 1:
        return -to_number(xs[0])
    result = to_number(xs[0])
    for x in xs[1:]:
        result -= to_number(x)
    return result


def divide(*xs: Any) -> int | float:
    if not xs:
        raise invalid_arguments()
    values = (1, xs[0]) if len(xs) == 1 else xs
    result: int | float = to_number(values[0])
    for x in values[1:]:
        divisor = to_number(x)
        if divisor == 0:
            raise nan_error()
        result = result / divisor
    return normalize_number(result)


def js_mod(a: int | float, b: int | float) -> int | float:
    """``%`` with the sign of the dividend (JavaScript), not of the divisor (Python)."""
    if b == 0:
        raise nan_error()
    if isinstance(a, int) and isinstance(b, int):
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    return normalize_number(math.fmod(a, b))


def modulo(*xs: Any) -> int | float:
    if len(xs) < 2:
        raise invalid_arguments()
    result = to_number(xs[0])
    for x in xs[1:]:
        result = js_mod(result, to_number(x))
    return result


def _numbers_only(xs: tuple[Any, ...]) -> tuple[Any, ...]:
    if not xs or not all(is_number(x) for x in xs):
        raise invalid_arguments()
    return xs


def minimum(*xs: Any) -> int | float:
    least: int | float = min(_numbers_only(xs))
    return least


def maximum(*xs: Any) -> int | float:
    most: int | float = max(_numbers_only(xs))
    return most


def concat(*xs: Any) -> str:
    return "".join(cat_str(x) for x in xs)


def substr(source: Any, start: Any = 0, length: Any = None) -> str:
    """JS ``String.prototype.substr`` plus JSON-Logic's negative length (stop that many from the end)."""
    text = cat_str(source)
    begin = int(to_number(start))
    if begin < 0:
        begin = max(len(text) + begin, 0)
    tail = text[begin:]
    if length is None:
        return tail
    count = int(to_number(length))
    if count < 0:
        return tail[: max(len(tail) + count, 0)]
    return tail[:count]


def merge(*xs: Any) -> list[Any]:
    out: list[Any] = []
    for x in xs:
        items = as_list(x)
        if items is None:
            out.append(x)
        else:
            out.extend(items)
    return out


# ---------------------------------------------------------------- data access


def get_item(data: Any, key: Any) -> Any:
    """One step of a path: object key or array index; ``None`` when absent (no attribute access)."""
    if type(data) is dict:
        return data.get(key if type(key) is str else key_str(key))
    if type(data) is list or (isinstance(data, Sequence) and not isinstance(data, str | bytes | bytearray)):
        index = _index(key)
        if index is not None and index < len(data):
            return data[index]
        return None
    if isinstance(data, Mapping):
        return data.get(key_str(key))
    return None


def has_item(data: Any, key: Any) -> bool:
    if isinstance(data, Mapping):
        return key_str(key) in data
    if isinstance(data, Sequence) and not isinstance(data, str | bytes | bytearray):
        index = _index(key)
        return index is not None and index < len(data)
    return False


def _index(key: Any) -> int | None:
    if type(key) is int:
        return key if key >= 0 else None
    if type(key) is float and key.is_integer() and key >= 0:
        return int(key)
    if type(key) is str and key.isascii() and key.isdigit():
        return int(key)
    return None


def resolve_path(data: Any, parts: Sequence[Any]) -> Any:
    for part in parts:
        if data is None:
            return None
        data = get_item(data, part)
    return data


def path_exists(data: Any, parts: Sequence[Any]) -> bool:
    for part in parts:
        if not has_item(data, part):
            return False
        data = get_item(data, part)
    return True
