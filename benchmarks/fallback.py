"""FHIR fallback: a hook call with no prefetch, so the service fetches every prefetch key from the local
HAPI FHIR R4 server (scripts/hapi.sh) itself; compared with the same call with complete prefetch.

The 100-resource patient is put on the server under its own ids (prefixed `bench-`, so it cannot collide
with the fixture patients other test runs load) with one transaction of PUTs, and removed afterwards. Calls
run in-process through `call_service` with an allowlisted `FhirFetcher` on one keep-alive httpx client, as a
worker holds it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from typing import Any

import httpx
import orjson
from inprocess import NOW, Harness, summary_ms
from patients import Patient, request_body
from servers import ROOT

from cds_service.cli.cases import Case, describe
from cds_service.cli.smoke import load
from cds_service.fhir import FetchLimits, FhirFetcher

HAPI = ROOT / "scripts" / "hapi.sh"


class Hapi:
    """A HAPI server for the run: ours if we started it, otherwise the one already running (left alone)."""

    def __init__(self) -> None:
        self.base: str | None = None
        self.started_here = False
        self.process: subprocess.Popen | None = None
        self.problem: str | None = None

    def begin(self) -> None:
        """Start in the background (the JVM takes a while); `wait` collects the base URL."""
        if shutil.which("java") is None:
            self.problem = "Java is not installed (scripts/hapi.sh needs Java 17+), so the section is skipped"
            return
        status = subprocess.run([str(HAPI), "status"], capture_output=True, text=True)
        if status.returncode == 0 and status.stdout.strip():
            self.base = status.stdout.strip().splitlines()[-1]
            return
        self.process = subprocess.Popen(
            [str(HAPI), "start"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.started_here = True

    def wait(self, timeout: float = 240) -> str | None:
        if self.process is not None and self.base is None:
            try:
                out, err = self.process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.problem = f"HAPI did not start within {timeout:.0f} s"
                return None
            if self.process.returncode != 0:
                self.problem = f"scripts/hapi.sh start failed: {err.strip().splitlines()[-1:]}"
                return None
            self.base = out.strip().splitlines()[-1]
        return self.base

    def end(self) -> None:
        if self.started_here:
            subprocess.run([str(HAPI), "stop"], capture_output=True)


def renamed(patient: Patient, new_id: str) -> Patient:
    text = orjson.dumps(patient.case).decode().replace(patient.id, new_id)
    return Patient(patient.size, orjson.loads(text))


async def _measure(base: str, patient: Patient, count: int, harness: Harness) -> dict[str, Any]:
    case = Case(patient.id, NOW, patient.resources, patient.case["calls"])
    started = time.perf_counter()
    loaded = await load(base, [case])
    load_seconds = time.perf_counter() - started
    rows = []
    try:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            for page_size in (None, 200):
                fetcher = FhirFetcher(client, [base], FetchLimits(page_size=page_size), require_https=False)
                for call_name in ("patient-view", "select-removal"):
                    no_prefetch = request_body(patient, call_name, prefetch=False, fhir_server=base)
                    full = request_body(patient, call_name)
                    first = await harness.call(no_prefetch, fetcher)
                    reference = await harness.call(full)
                    for _ in range(3):
                        await harness.call(no_prefetch, fetcher)
                    samples = []
                    for _ in range(count):
                        t = time.perf_counter()
                        await harness.call(no_prefetch, fetcher)
                        samples.append(time.perf_counter() - t)
                    prefetched = await harness.time_calls(full, count)
                    stats = summary_ms(samples)
                    stats["p95_ms"] = sorted(s * 1000 for s in samples)[int(0.95 * (len(samples) - 1))]
                    rows.append(
                        {
                            "hook": no_prefetch["hook"],
                            "call": call_name,
                            "page_size": page_size or "server default",
                            "fetched_keys": first.fetched_keys,
                            "record_resources": first.resources,
                            "cards": describe(first.response["cards"]),
                            "same_cards_as_prefetch": describe(first.response["cards"])
                            == describe(reference.response["cards"]),
                            "no_prefetch": stats,
                            "full_prefetch": summary_ms(prefetched),
                            "x_full_prefetch_median": stats["median_ms"]
                            / summary_ms(prefetched)["median_ms"],
                        }
                    )
    finally:
        await load(base, [case], remove=True)
    return {
        "base": base,
        "loaded_resources": loaded,
        "load_seconds": load_seconds,
        "calls": count,
        "rows": rows,
    }


def run(hapi: Hapi, patient: Patient, quick: bool = False) -> dict[str, Any]:
    base = hapi.wait()
    if base is None:
        return {"skipped": hapi.problem}
    harness = Harness()
    result = asyncio.run(_measure(base, renamed(patient, "bench-p25-100"), 20 if quick else 60, harness))
    result["hapi_started_by_benchmark"] = hapi.started_here
    return result


if __name__ == "__main__":
    import json
    import sys

    from patients import grown

    hapi = Hapi()
    hapi.begin()
    try:
        print(json.dumps(run(hapi, grown(100), "--quick" in sys.argv), indent=2))
    finally:
        hapi.end()
