"""Benchmark: the JSON-Logic engines against hand-written Python.

1. The path the service runs: real facts of the bundled plan definitions, compiled by the clinical
   (three-valued) engine, against the same facts written by hand (`clinical_logic.py`), on every fixture
   patient, after checking that both give the same value. The target: within 3x of hand-written.
2. The standard engine (the conformance-tested one) on the reference rule of the research note
   (jsonlogic.md section 6), against hand-written Python and datalogic-py, with data-size scaling.

Run: ``.venv/bin/python benchmarks/logic_bench.py [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import timeit
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import clinical_logic
import orjson

from cds_service.logic import compile as compile_logic
from cds_service.plans.evaluate import start_evaluation
from cds_service.plans.evaluation import Evaluation, activated
from cds_service.plans.loader import load_ruleset
from cds_service.plans.model import RuleSet
from cds_service.record import PatientRecord

ROOT = Path(__file__).resolve().parents[1]

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


def fixture_evaluations(ruleset: RuleSet) -> list[Evaluation]:
    """One evaluation per fixture patient, with every fact the benchmarked ones read already memoised."""
    evaluations = []
    for path in sorted((ROOT / "fixtures" / "patients").glob("*.json")):
        case = orjson.loads(path.read_bytes())
        resources = [entry["resource"] for entry in case["bundle"].get("entry", ())]
        t0 = date.fromisoformat(case["t0"][:10])
        evaluation = start_evaluation(ruleset, "patient-view", PatientRecord.of_resources(resources), [], t0)
        with activated(evaluation):
            for name in clinical_logic.FACTS:
                evaluation.fact(name)
        evaluations.append(evaluation)
    return evaluations


def measure_clinical() -> dict[str, Any]:
    """µs for one pass of the benchmarked facts over every fixture patient, generated code vs by hand."""
    ruleset = load_ruleset(ROOT / "plandefinitions")
    compiled = [ruleset.facts[name].compiled for name in clinical_logic.FACTS]
    by_hand = list(clinical_logic.FACTS.values())
    evaluations = fixture_evaluations(ruleset)
    engine_us = hand_us = 0.0
    for evaluation in evaluations:
        with activated(evaluation):
            for name, generated, written in zip(clinical_logic.FACTS, compiled, by_hand, strict=True):
                assert generated(None) == written(evaluation), (name, evaluation.record.patient)
            engine_us += time_call(lambda _: [function(None) for function in compiled], None)
            hand_us += time_call(lambda ev: [function(ev) for function in by_hand], evaluation)
    return {
        "facts": list(clinical_logic.FACTS),
        "patients": len(evaluations),
        "rows": [
            {"evaluator": "hand-written Python", "us_per_pass": hand_us, "x_hand_written": 1.0},
            {
                "evaluator": "clinical engine (generated code)",
                "us_per_pass": engine_us,
                "x_hand_written": engine_us / hand_us,
            },
        ],
    }


def measure() -> dict[str, Any]:
    return {"clinical": measure_clinical(), "standard": measure_standard()}


def measure_standard() -> dict[str, Any]:
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
    clinical = results["clinical"]
    print(f"Clinical engine: {len(clinical['facts'])} real facts x {clinical['patients']} fixture patients")
    for row in clinical["rows"]:
        print(f"{row['evaluator']:<34} {row['us_per_pass']:>9.1f} us/pass {row['x_hand_written']:>6.2f}x")
    results = results["standard"]
    print(f"Standard engine, Python {results['python']}, median of {results['repeats']} timeit runs")
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
