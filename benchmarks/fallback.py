"""FHIR fallback: a hook call with no prefetch, so the service fetches every prefetch key from the local
HAPI FHIR R4 server (scripts/hapi.sh) itself; compared, in the same run and in turns, with

- the same call at the old default, the server's own page size (HAPI: 20), for before/after;
- a plain concurrent httpx fetch of the very URLs the service sent at the defaults (recorded from its own
  client), following `next` links, over one keep-alive `httpx.AsyncClient`, `asyncio.gather` over the keys:
  the floor that the target (service at the defaults <= 1.5x) is measured against;
- the same call with complete prefetch (what the fetch adds).

The 100-resource patient is put on the server under its own ids (prefixed `bench-`, so it cannot collide
with the fixture patients other test runs load) with one transaction of PUTs, and removed afterwards. Calls
run in-process through `call_service` with an allowlisted `FhirFetcher` over the service's own outbound
client (config.outbound_client: pinned connections, kept alive, HTTP/2 where offered; HAPI here is plain
http, so HTTP/1.1), as a worker holds them."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from inprocess import NOW, Harness, percentile, summary_ms
from patients import Patient, request_body
from servers import ROOT

from cds_service.cli.cases import Case, describe
from cds_service.cli.smoke import load
from cds_service.config import Settings, fetch_limits, outbound_client
from cds_service.fhir import FhirFetcher
from cds_service.fhir.body import ACCEPT_ENCODING

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


HEADERS = {"Accept": "application/fhir+json", "Accept-Encoding": ACCEPT_ENCODING}  # as the service asks
MODES = ("defaults", "server page size", "plain httpx")


class Requests:
    """Counts a client's requests and keeps their URLs (an httpx event hook)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.urls.append(str(request.url))


def first_pages(urls: list[str], base: str) -> list[str]:
    """The searches of one call: every URL but the version probe and HAPI's paging links (to the base)."""
    return [u for u in urls if u.split("?", 1)[0] not in (base, f"{base}/metadata")]


async def plain_fetch(client: httpx.AsyncClient, urls: list[str]) -> tuple[int, int]:
    """Every search with its `next` pages, all keys at once: the least any client could do.
    Returns (resources, requests)."""

    async def one(url: str | None) -> tuple[int, int]:
        resources = requests = 0
        while url is not None:
            response = await client.get(url, headers=HEADERS)
            response.raise_for_status()
            bundle = orjson.loads(response.content)
            resources, requests = resources + len(bundle.get("entry", ())), requests + 1
            url = next((link["url"] for link in bundle.get("link", ()) if link["relation"] == "next"), None)
        return resources, requests

    found = await asyncio.gather(*(one(url) for url in urls))
    return sum(r for r, _ in found), sum(n for _, n in found)


def stats(samples: list[float]) -> dict[str, float]:
    found = summary_ms(samples)
    found["p95_ms"] = percentile([s * 1000 for s in samples], 95)
    return found


async def _timed_in_turns(
    paths: dict[str, Callable[[], Awaitable[Any]]], count: int
) -> dict[str, list[float]]:
    """Each path `count` times, taking turns, so a slower moment of the machine hits every path alike."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(3):  # warm every path
        for run_one in paths.values():
            await run_one()
    for _ in range(count):
        for name, run_one in paths.items():
            t = time.perf_counter()
            await run_one()
            samples[name].append(time.perf_counter() - t)
    return samples


class Fallback:
    """The service's two fetchers (defaults, and the old server page size) on its outbound client, whose
    requests are counted and recorded, and a plain httpx client beside it."""

    def __init__(self, base: str, harness: Harness, service: httpx.AsyncClient, plain: httpx.AsyncClient):
        self.base, self.harness, self.plain = base, harness, plain
        self.counted = Requests()
        service.event_hooks["request"] = [self.counted]
        self.fetchers = {
            name: FhirFetcher(service, [base], fetch_limits(settings(base, size)), require_https=False)
            for name, size in (("defaults", None), ("server page size", 0))
        }

    async def row(self, patient: Patient, call_name: str, count: int) -> dict[str, Any]:
        harness = self.harness
        no_prefetch = request_body(patient, call_name, prefetch=False, fhir_server=self.base)
        full = request_body(patient, call_name)
        reference = await harness.call(full)
        requests: dict[str, int] = {}
        firsts: dict[str, Any] = {}
        sent: dict[str, list[str]] = {}
        for name, fetcher in self.fetchers.items():
            await harness.call(no_prefetch, fetcher)  # the version probe, once per fetcher
            self.counted.urls.clear()
            firsts[name] = await harness.call(no_prefetch, fetcher)
            requests[name], sent[name] = len(self.counted.urls), list(self.counted.urls)
        searches = first_pages(sent["defaults"], self.base)  # the very URLs the service sent at the defaults
        entries, requests["plain httpx"] = await plain_fetch(self.plain, searches)
        samples = await _timed_in_turns(
            {
                "defaults": lambda: harness.call(no_prefetch, self.fetchers["defaults"]),
                "server page size": lambda: harness.call(no_prefetch, self.fetchers["server page size"]),
                "plain httpx": lambda: plain_fetch(self.plain, searches),
            },
            count,
        )
        prefetched = summary_ms(await harness.time_calls(full, count))
        modes = {name: {**stats(samples[name]), "requests_per_call": requests[name]} for name in MODES}
        return {
            "hook": no_prefetch["hook"],
            "call": call_name,
            "fetched_keys": firsts["defaults"].fetched_keys,
            "record_resources": firsts["defaults"].resources,
            "plain_resources": entries,
            "cards": describe(firsts["defaults"].response["cards"]),
            "same_cards_as_prefetch": all(
                describe(first.response["cards"]) == describe(reference.response["cards"])
                for first in firsts.values()
            ),
            "modes": modes,
            "full_prefetch": prefetched,
            "x_plain_median": modes["defaults"]["median_ms"] / modes["plain httpx"]["median_ms"],
            "x_plain_p95": modes["defaults"]["p95_ms"] / modes["plain httpx"]["p95_ms"],
            "before_after_median": modes["server page size"]["median_ms"] / modes["defaults"]["median_ms"],
        }


def settings(base: str, page_size: int | None = None) -> Settings:
    """The service's settings at their defaults (page size too, unless given), HAPI allowlisted."""
    extra = {} if page_size is None else {"fhir_page_size": page_size}
    return Settings(auth="off", fhir_allow_http=True, fhir_allowed_servers=[base], **extra)


async def _measure(base: str, patient: Patient, count: int, harness: Harness) -> dict[str, Any]:
    case = Case(patient.id, NOW, patient.resources, patient.case["calls"])
    started = time.perf_counter()
    loaded = await load(base, [case])
    load_seconds = time.perf_counter() - started
    try:
        async with (
            outbound_client(settings(base)) as service,
            httpx.AsyncClient(follow_redirects=False, trust_env=False) as plain,
        ):
            fallback = Fallback(base, harness, service, plain)
            rows = [await fallback.row(patient, name, count) for name in ("patient-view", "select-removal")]
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
    result = asyncio.run(_measure(base, renamed(patient, "bench-p25-100"), 15 if quick else 60, harness))
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
