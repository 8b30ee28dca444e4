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
from cds_service.hooks.patient_data import gather
from cds_service.plans.evaluate import evaluate
from cds_service.protocol.response import cds_response
from cds_service.record import PatientRecord
from cds_service.web.bodies import nesting_within


def median_us(function: Any, quick: bool) -> float:
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return statistics.median(t / number * 1e6 for t in timer.repeat(repeat=3 if quick else 5, number=number))


READ_TYPES = ("Condition", "Procedure", "Observation", "MedicationRequest", "DiagnosticReport")


def read_everything(record: PatientRecord) -> None:
    """What a rule set that read every resource closely would pay: the code index and an entry each."""
    for resource_type in READ_TYPES:
        record.of_type(resource_type)


def run(patients: dict[int, Patient], quick: bool = False) -> dict[str, Any]:
    import asyncio

    harness = Harness()
    rows = []
    for size in (100, 1000):
        body = request_body(patients[size], "select-removal")
        raw = orjson.dumps(body)
        service = harness.services[body["hook"]]
        request = parse_request(body, service.hook)
        drafts = drafts_in_scope(request)
        loop = asyncio.new_event_loop()
        values, _ = loop.run_until_complete(gather(service.prefetch, request, None))
        cards, _ = evaluate(
            harness.ruleset, service.hook, PatientRecord.build(values), drafts, harness_now(), request.context
        )
        steps = {
            "whole call_service (order-select)": lambda: loop.run_until_complete(harness.call(body)),
            "orjson.loads(body) [bodies.read_json]": lambda: orjson.loads(raw),
            "nesting_within(body, 64) [bodies.read_json]": lambda: nesting_within(raw, 64),
            "parse_request (pydantic envelope) [hooks.call_service]": lambda: parse_request(
                body, service.hook
            ),
            "PatientRecord.build [hooks.call_service]": lambda: PatientRecord.build(values),
            "  if every resource were read closely (code index, shape, entry)": lambda: read_everything(
                PatientRecord.build(values)
            ),
            "evaluate (plans), with the record reads they make": lambda: evaluate(
                harness.ruleset,
                service.hook,
                PatientRecord.build(values),
                drafts,
                harness_now(),
                request.context,
            ),
            "cds_response(cards)": lambda: cds_response(cards),
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
