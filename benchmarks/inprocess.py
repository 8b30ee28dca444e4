"""In-process hook evaluation: `cds_service.hooks.call_service` with complete prefetch (no HTTP, no fetch),
for each synthetic patient size and hook; median and p99 wall time per call against `orjson.loads` of the
same body, and the cards (which must be the same at every size)."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from patients import Patient, request_body

from cds_service.cli.cases import describe
from cds_service.config import bundled
from cds_service.hooks import build_services, call_service
from cds_service.plans.loader import load_ruleset

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CALLS = {"patient-view": "patient-view", "order-select": "select-removal"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
    }


class Harness:
    """The rule set and services loaded once, as a worker holds them."""

    def __init__(self) -> None:
        self.ruleset = load_ruleset(bundled("plandefinitions"))
        self.services = {s.hook: s for s in build_services(self.ruleset).values()}

    async def call(self, body: dict[str, Any], fetcher: Any = None) -> Any:
        return await call_service(self.services[body["hook"]], self.ruleset, body, fetcher, NOW)

    async def time_calls(self, body: dict[str, Any], count: int, warmup: int = 5) -> list[float]:
        for _ in range(warmup):
            await self.call(body)
        samples = []
        gc.collect()
        for _ in range(count):
            started = time.perf_counter()
            await self.call(body)
            samples.append(time.perf_counter() - started)
        return samples


def time_loads(raw: bytes, count: int) -> list[float]:
    """`orjson.loads` of the same body: the floor the in-process call is measured against."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        orjson.loads(raw)
        samples.append(time.perf_counter() - started)
    return samples


def iterations(size: int, quick: bool) -> int:
    base = {20: 2000, 100: 800, 1000: 120}.get(size, 200)
    return max(base // 4, 30) if quick else base


async def _run(patients: dict[int, Patient], quick: bool) -> dict[str, Any]:
    harness = Harness()
    rows = []
    for hook, call_name in CALLS.items():
        for size, patient in patients.items():
            body = request_body(patient, call_name)
            result = await harness.call(body)
            samples = await harness.time_calls(body, iterations(size, quick))
            loads = statistics.median(time_loads(orjson.dumps(body), iterations(size, quick))) * 1000
            row = {
                "hook": hook,
                "call": call_name,
                "size": size,
                "record_resources": result.resources,
                "cards": describe(result.response["cards"]),
                **summary_ms(samples),
                "loads_median_ms": loads,
            }
            rows.append(row | {"x_loads": row["median_ms"] / loads})
    growth = {}
    for hook in CALLS:
        by_size = {r["size"]: r for r in rows if r["hook"] == hook}
        if 100 in by_size and 1000 in by_size:
            growth[hook] = {
                "x_1000_vs_100_median": by_size[1000]["median_ms"] / by_size[100]["median_ms"],
                "x_100_vs_20_median": by_size[100]["median_ms"] / by_size[20]["median_ms"]
                if 20 in by_size
                else None,
                "us_per_resource_100_to_1000": (by_size[1000]["median_ms"] - by_size[100]["median_ms"])
                * 1000
                / (by_size[1000]["record_resources"] - by_size[100]["record_resources"]),
            }
    same_cards = all(len({tuple(r["cards"]) for r in rows if r["hook"] == hook}) == 1 for hook in CALLS)
    return {"rows": rows, "growth": growth, "same_cards_at_every_size": same_cards}


def run(patients: dict[int, Patient], quick: bool = False) -> dict[str, Any]:
    return asyncio.run(_run(patients, quick))


if __name__ == "__main__":
    import json
    import sys

    from patients import patients as build

    print(json.dumps(run(build(), "--quick" in sys.argv), indent=2))
