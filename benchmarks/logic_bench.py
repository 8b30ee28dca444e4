"""Benchmark: the reference clinical rule (research note jsonlogic.md section 6) evaluated by a
hand-written function, by ``cds_service.logic`` and by datalogic-py, plus data-size scaling.

Run: ``.venv/bin/python benchmarks/logic_bench.py [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cds_service.logic import compile as compile_logic

RULE: dict[str, Any] = {
    "and": [
        {">=": [{"var": "weeks_pt"}, 6]},
        {"==": [{"var": "cbt_done"}, True]},
        {"in": [{"var": "dx"}, ["M96.1", "M96.0"]]},
        {"<=": [{"var": "months_since_fusion"}, 120]},
    ]
}
DATA: dict[str, Any] = {"weeks_pt": 8, "cbt_done": True, "dx": "M96.1", "months_since_fusion": 14}
REPEATS = 7
_DX = frozenset({"M96.1", "M96.0"})


def hand_written(d: dict[str, Any]) -> bool:
    """The same rule written directly in Python: the floor any evaluator is measured against."""
    return d["weeks_pt"] >= 6 and d["cbt_done"] is True and d["dx"] in _DX and d["months_since_fusion"] <= 120


def with_extra_facts(count: int) -> dict[str, Any]:
    data = dict(DATA)
    for i in range(count):
        data[f"fact_{i}"] = {"code": f"C{i}", "date": "2024-01-01", "value": i}
    return data


def time_call(func: Callable[[Any], Any], data: Any) -> float:
    """Median microseconds per call over ``REPEATS`` autoranged timeit runs."""
    timer = timeit.Timer(lambda: func(data))
    number, _ = timer.autorange()
    number = max(number, 1)
    runs = [timer.timeit(number) / number * 1e6 for _ in range(REPEATS)]
    return statistics.median(runs)


def evaluators() -> dict[str, Callable[[Any], Any]]:
    found: dict[str, Callable[[Any], Any]] = {
        "hand-written Python": hand_written,
        "cds_service.logic": compile_logic(RULE),
    }
    try:
        import datalogic_py
    except ImportError:
        return found
    found["datalogic-py Rule.evaluate"] = datalogic_py.Engine().compile(RULE).evaluate
    return found


def measure() -> dict[str, Any]:
    funcs = evaluators()
    for name, func in funcs.items():
        assert func(DATA) is True, name
    results: dict[str, Any] = {"python": sys.version.split()[0], "repeats": REPEATS, "rows": []}
    for extra in (0, 50, 500):
        data = with_extra_facts(extra)
        for name, func in funcs.items():
            results["rows"].append(
                {"evaluator": name, "extra_facts": extra, "us_per_eval": time_call(func, data)}
            )
    base = {
        row["extra_facts"]: row["us_per_eval"]
        for row in results["rows"]
        if row["evaluator"] == "hand-written Python"
    }
    for row in results["rows"]:
        row["x_hand_written"] = row["us_per_eval"] / base[row["extra_facts"]]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    results = measure()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"Python {results['python']}, median of {results['repeats']} timeit autorange runs")
    print(f"{'evaluator':<28} {'extra facts':>11} {'us/eval':>9} {'x hand':>7}")
    for row in results["rows"]:
        name, extra, micros, ratio = (
            row["evaluator"],
            row["extra_facts"],
            row["us_per_eval"],
            row["x_hand_written"],
        )
        print(f"{name:<28} {extra:>11} {micros:>9.3f} {ratio:>7.2f}")


if __name__ == "__main__":
    main()
