"""Load the synthetic patients into any FHIR server and check every hook against it without prefetch, so
the service fetches everything itself: the path an EHR that sends no prefetch takes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ..config import Settings, fetch_limits
from ..errors import ServiceError
from ..fhir import FhirFetcher
from ..hooks import build_services, call_service
from .cases import Case, describe, expected_of, matches, removal_bundle, request_for, upload_bundle
from .errors import label_of
from .loaded import rules_in_service

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
POLL_INTERVAL_S = 2.0
MAX_PROBE_TIMEOUT_S = 10.0
PROGRESS_EVERY_S = 30.0

log = logging.getLogger("cds_service.smoke")


class LoadError(Exception):
    """The FHIR server refused the fixtures; the message says how, without resource contents."""


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    call: str
    hook: str
    expected: list[str]
    actual: list[str]
    passed: bool
    milliseconds: float


async def _transaction(http: httpx.AsyncClient, fhir: str, bundle: dict[str, Any]) -> None:
    response = await http.post(fhir.rstrip("/"), json=bundle, headers=FHIR_JSON)
    if response.status_code >= 300:
        raise LoadError(
            f"FHIR server answered {response.status_code} to a transaction of {len(bundle['entry'])}"
        )


async def wait_until_ready(fhir: str, timeout_s: float, *, interval_s: float = POLL_INTERVAL_S) -> float:
    """Poll `GET {fhir}/metadata` until it answers 200 (a FHIR server that is up and serving); returns the
    seconds it took. Raises LoadError, naming the last answer, when `timeout_s` runs out first."""
    url = fhir.rstrip("/") + "/metadata"
    started = time.monotonic()
    deadline = started + timeout_s
    next_progress = started + PROGRESS_EVERY_S
    last = "no answer"
    log.info("waiting up to %g s for %s", timeout_s, url)
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as http:
        while True:
            probe_timeout = max(0.5, min(MAX_PROBE_TIMEOUT_S, deadline - time.monotonic()))
            try:
                response = await http.get(url, headers={"Accept": FHIR_JSON["Accept"]}, timeout=probe_timeout)
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            else:
                if response.status_code == 200:
                    waited = time.monotonic() - started
                    log.info("%s answered 200 after %.1f s", url, waited)
                    return waited
                last = f"HTTP {response.status_code}"
            now = time.monotonic()
            if now >= deadline:
                raise LoadError(f"no FHIR server at {url}: not 200 within {timeout_s:g} s (last: {last})")
            if now >= next_progress:
                log.info("still waiting for %s (%.0f s, last: %s)", url, now - started, last)
                next_progress += PROGRESS_EVERY_S
            await asyncio.sleep(min(interval_s, deadline - now))


async def load(fhir: str, cases: list[Case], *, remove: bool = False) -> int:
    """Create (or with `remove`, delete) every case's resources; returns how many resources."""
    bundle = removal_bundle(cases) if remove else upload_bundle(cases)
    async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
        await _transaction(http, fhir, bundle)
    return len(bundle["entry"])


async def run_calls(fhir: str, cases: list[Case], settings: Settings) -> list[Row]:
    """Every call of every case against `fhir`, no prefetch, T0 frozen at the case's own T0."""
    ruleset = rules_in_service(settings)
    services = {service.hook: service for service in build_services(ruleset).values()}
    limits = fetch_limits(settings)
    rows = []
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        fetcher = FhirFetcher(client, [fhir], limits)
        for case in cases:
            for call in case.calls:
                started = time.perf_counter()
                try:
                    result = await call_service(
                        services[call["hook"]], ruleset, request_for(case, call, fhir), fetcher, case.t0
                    )
                    actual = describe(result.response["cards"])
                    passed = matches(result.response["cards"], call)
                except ServiceError as error:
                    actual, passed = (
                        [f"{label_of(error)}: {issue.diagnostics}" for issue in error.issues],
                        False,
                    )
                elapsed = (time.perf_counter() - started) * 1000
                rows.append(
                    Row(case.id, call["name"], call["hook"], expected_of(call), actual, passed, elapsed)
                )
    return rows


def table(rows: list[Row], write: Callable[[str], None]) -> None:
    """A plain-text table, then the closing line `N passed, M failed`."""
    width = max((len(f"{r.case}/{r.call}") for r in rows), default=10)
    write(f"{'case/call':<{width}}  {'hook':<12}  {'result':<6}  {'ms':>6}  cards")
    for row in rows:
        cards = ", ".join(row.actual) or "none"
        line = f"{row.case + '/' + row.call:<{width}}  {row.hook:<12}  {'pass' if row.passed else 'FAIL':<6}"
        line += f"  {row.milliseconds:>6.0f}  {cards}"
        if not row.passed:
            line += f"   (expected: {', '.join(row.expected) or 'none'})"
        write(line)
    passed = sum(row.passed for row in rows)
    write(f"{passed} passed, {len(rows) - passed} failed")
