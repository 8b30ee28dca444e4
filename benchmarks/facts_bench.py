"""Benchmark: what one fact costs as the patient record grows.

The record is indexed once per request; a fact over a short code list is an index lookup, so its cost must
not grow with the number of resources. Compared in the same run: indexing the record (which does grow, once
per request) and a naive scan of every resource for the same codes.

Run: ``.venv/bin/python benchmarks/facts_bench.py``.
"""

from __future__ import annotations

import statistics
import timeit
from datetime import date
from pathlib import Path
from typing import Any

from cds_service.plans.evaluation import Evaluation, activated
from cds_service.plans.loader import load_ruleset
from cds_service.record import PatientRecord

ROOT = Path(__file__).resolve().parents[1]
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
T0 = date(2026, 11, 1)


def record_resources(size: int) -> list[dict[str, Any]]:
    """`size` unrelated conditions and observations, plus one hardware-failure diagnosis."""
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Condition",
            "id": "hw",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "code": {"coding": [{"system": ICD, "code": "T84.216A"}]},
            "onsetDateTime": "2026-06-01",
        }
    ]
    for index in range(size - 1):
        kind = "Condition" if index % 2 else "Observation"
        resources.append(
            {
                "resourceType": kind,
                "id": f"r{index}",
                "status": "final",
                "code": {"coding": [{"system": ICD, "code": f"Z{index % 97:02d}.{index % 7}"}]},
                "effectiveDateTime": "2026-01-01",
            }
        )
    return resources


def median_us(function: Any) -> float:
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return statistics.median(t / number * 1e6 for t in timer.repeat(repeat=5, number=number))


def measure(size: int, ruleset: Any) -> tuple[float, float, float]:
    """Median µs to index a record of `size` resources, to compute one fact on it, and to scan it naively."""
    resources = record_resources(size)
    record = PatientRecord.of_resources(resources)
    fact = ruleset.facts["hardwareFailureConditions"].compiled
    codes = {(ICD, "T84.216A")}

    def evaluate_fact() -> Any:
        evaluation = Evaluation(
            record, T0, "patient-view", ruleset.params, ruleset.facts, frozenset(), ruleset.valuesets
        )
        with activated(evaluation):
            return fact(None)

    def naive_scan() -> list[dict[str, Any]]:
        return [
            r
            for r in resources
            if r["resourceType"] == "Condition"
            and any((c["system"], c["code"]) in codes for c in r["code"]["coding"])
        ]

    assert len(evaluate_fact()) == 1 and len(naive_scan()) == 1
    return (
        median_us(lambda: PatientRecord.of_resources(resources)),
        median_us(evaluate_fact),
        median_us(naive_scan),
    )


def main() -> None:
    ruleset = load_ruleset(ROOT / "plandefinitions")
    print(f"{'resources':>9} {'index record':>13} {'fact (indexed)':>15} {'naive scan':>11}")
    for size in (20, 100, 1000):
        index, fact, scan = measure(size, ruleset)
        print(f"{size:>9} {index:>11.1f}us {fact:>13.2f}us {scan:>9.1f}us")


if __name__ == "__main__":
    main()
