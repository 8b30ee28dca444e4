"""Conformance gate: the classic jsonlogic.com suite and the community compat-tables suites.

Scoring follows the compat-tables runner: a value case passes when the result equals the expected JSON
value (compared JSON-typed, so ``true`` is not ``1``); an error case passes when compiling or evaluating
raises a ``LogicError`` whose ``type`` is the expected error type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cds_service.logic import LogicError, compile

SUITES = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "jsonlogic"
CLASSIC_REQUIRED = 277
COMPAT_REQUIRED = 1104

# Community cases we deliberately do not pass: (suite file, description) -> reason.
DELIBERATE_MISSES: dict[tuple[str, str], str] = {}


def _load(path: Path) -> list[Any]:
    if not path.is_file():
        pytest.fail(f"conformance suite missing: {path} (expected the repo's sibling ../shared checkout)")
    return [case for case in json.loads(path.read_text(encoding="utf-8")) if not isinstance(case, str)]


def json_equal(a: Any, b: Any) -> bool:
    """Equality over JSON types: booleans differ from numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def run_case(rule: Any, data: Any, expected: Any = None, error: Any = None) -> tuple[bool, str]:
    """Return (passed, detail) for one case."""
    try:
        result = compile(rule)(data)
    except LogicError as exc:
        if error is not None and exc.type == error.get("type"):
            return True, ""
        return False, f"raised {exc!r}"
    if error is not None:
        return False, f"expected error {error}, got {result!r}"
    return json_equal(result, expected), f"got {result!r}, expected {expected!r}"


def test_classic_suite(record_score: Callable[[str, int, int], None]) -> None:
    cases = _load(SUITES / "classic" / "tests.json")
    failures = []
    for rule, data, expected in cases:
        ok, detail = run_case(rule, data, expected)
        if not ok:
            failures.append(f"{json.dumps(rule)} data={json.dumps(data)}: {detail}")
    passed = len(cases) - len(failures)
    record_score("classic", passed, len(cases))
    assert passed == CLASSIC_REQUIRED, "\n".join(failures)


def test_compat_tables(record_score: Callable[[str, int, int], None]) -> None:
    root = SUITES / "compat-tables" / "suites"
    index = (
        json.loads((root / "index.json").read_text(encoding="utf-8"))
        if (root / "index.json").is_file()
        else None
    )
    if index is None:
        pytest.fail(f"compat-tables index missing under {root}")
    total = passed = 0
    unexpected = []
    missed = set()
    for name in index:
        for case in _load(root / name):
            total += 1
            ok, detail = run_case(case["rule"], case.get("data"), case.get("result"), case.get("error"))
            key = (name, case["description"])
            if ok:
                passed += 1
            elif key in DELIBERATE_MISSES:
                missed.add(key)
            else:
                unexpected.append(f"{name}: {case['description']}: {detail}")
    record_score("compat-tables", passed, total)
    assert total == 1138
    assert passed >= COMPAT_REQUIRED, "\n".join(unexpected)
    assert not unexpected, "unexpected failures:\n" + "\n".join(unexpected)
    assert missed == set(DELIBERATE_MISSES), f"listed misses that now pass: {set(DELIBERATE_MISSES) - missed}"
