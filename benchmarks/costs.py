# ruff: noqa: B023  (each lambda is timed within the same loop iteration that binds its variables)
"""Cost of the individual steps of one hook call that the profile points at, timed alone with timeit on the
same request bodies (median microseconds per call), so each optimisation proposal has a measured cost."""

from __future__ import annotations

import statistics
import timeit
from typing import Any

import orjson
from inprocess import Harness
from patients import Patient, request_body

from cds_service.hooks import drafts_in_scope, parse_request
from cds_service.plans.evaluate import evaluate
from cds_service.record import PatientRecord, make_entry, type_errors
from cds_service.record.dates import parse_instant
from cds_service.web.bodies import nesting_within


def nesting_within_candidate(node: Any, limit: int, depth: int = 1) -> bool:
    """Proposed replacement for bodies.nesting_within (same answer): recursion that only descends into
    containers, instead of a stack of (child, depth) tuples built by a generator for every child."""
    if depth > limit:
        return False
    for child in node.values() if type(node) is dict else node:
        kind = type(child)
        if (kind is dict or kind is list) and not nesting_within_candidate(child, limit, depth + 1):
            return False
    return True


def median_us(function: Any, quick: bool) -> float:
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return statistics.median(t / number * 1e6 for t in timer.repeat(repeat=3 if quick else 5, number=number))


def resources_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for value in body["prefetch"].values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            found.extend(entry["resource"] for entry in value.get("entry", []))
        elif isinstance(value, dict):
            found.append(value)
    return found


def run(patients: dict[int, Patient], quick: bool = False) -> dict[str, Any]:
    import asyncio

    harness = Harness()
    rows = []
    for size in (100, 1000):
        body = request_body(patients[size], "select-removal")
        raw = orjson.dumps(body)
        resources = resources_of(body)
        record = PatientRecord.of_resources(resources)
        drafts = drafts_in_scope(parse_request(body, body["hook"]))
        assert nesting_within_candidate(body, 64) == nesting_within(body, 64)
        assert nesting_within_candidate(body, 6) == nesting_within(body, 6)
        service = harness.services[body["hook"]]
        dates = [
            r.get("performedDateTime")
            or r.get("effectiveDateTime")
            or r.get("authoredOn")
            or r.get("onsetDateTime")
            for r in resources
        ]
        loop = asyncio.new_event_loop()
        steps = {
            "whole call_service (order-select)": lambda: loop.run_until_complete(harness.call(body)),
            "orjson.loads(body) [bodies.read_json]": lambda: orjson.loads(raw),
            "nesting_within(body, 64) [bodies.read_json]": lambda: nesting_within(body, 64),
            "  candidate: recursive nesting check (costs.nesting_within_candidate)": lambda: (
                nesting_within_candidate(body, 64)
            ),
            "parse_request (pydantic envelope) [hooks.call_service]": lambda: parse_request(
                body, service.hook
            ),
            "record.type_errors over every resource [patient_data._checked_given]": lambda: [
                list(type_errors(r)) for r in resources
            ],
            "PatientRecord.build [hooks.call_service]": lambda: PatientRecord.of_resources(resources),
            "  of which make_entry per resource": lambda: [make_entry(r) for r in resources],
            "  of which parse_instant per resource date": lambda: [parse_instant(d) for d in dates],
            "evaluate (plans) on the built record": lambda: evaluate(
                harness.ruleset, body["hook"], record, drafts, harness_now(), body["context"], None
            ),
            "orjson.dumps(response)": lambda: orjson.dumps({"cards": []}),
        }
        for name, function in steps.items():
            rows.append({"size": size, "step": name, "us": median_us(function, quick)})
        loop.close()
    return {"rows": rows}


def harness_now():
    from inprocess import NOW

    return NOW.date()


if __name__ == "__main__":
    import sys

    from patients import patients as build

    for row in run(build(), "--quick" in sys.argv)["rows"]:
        print(f"{row['size']:>5} {row['us']:>10.1f} us  {row['step']}")
