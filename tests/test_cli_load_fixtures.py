"""`cds-service load-fixtures --wait SECONDS`: wait for the FHIR server to answer /metadata, then load.

This is what the compose file's one-shot job runs while HAPI is still starting, so the job neither fails on
the first refused connection nor hangs when the server never comes up.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from support.hooks import ROOT
from support.loopback import free_port, serving

CASES = ROOT / "fixtures" / "patients"


@dataclass
class Fhir:
    """A FHIR server that says it is starting (503 on /metadata) for its first `not_ready` probes."""

    not_ready: int = 0
    metadata_calls: list[float] = field(default_factory=list)
    transactions: list[dict] = field(default_factory=list)
    transaction_times: list[float] = field(default_factory=list)

    def app(self) -> Starlette:
        async def metadata(request: Request) -> JSONResponse:
            self.metadata_calls.append(time.monotonic())
            if len(self.metadata_calls) <= self.not_ready:
                return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, status_code=503)
            return JSONResponse(
                {"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"},
                media_type="application/fhir+json",
            )

        async def transaction(request: Request) -> JSONResponse:
            bundle = await request.json()
            self.transactions.append(bundle)
            self.transaction_times.append(time.monotonic())
            entries = [{"response": {"status": "200 OK"}} for _ in bundle["entry"]]
            return JSONResponse(
                {"resourceType": "Bundle", "type": "transaction-response", "entry": entries},
                media_type="application/fhir+json",
            )

        return Starlette(
            routes=[
                Route("/fhir/metadata", metadata, methods=["GET"]),
                Route("/fhir", transaction, methods=["POST"]),
            ]
        )


@contextmanager
def fhir_server(fhir: Fhir, port: int | None = None) -> Iterator[str]:
    port = port or free_port()
    with serving(fhir.app(), port):
        yield f"http://127.0.0.1:{port}/fhir"


@pytest.fixture
def two_cases(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    for path in sorted(CASES.glob("*.json"))[:2]:
        shutil.copy(path, folder / path.name)
    return folder


def load_fixtures(*args: str) -> list[str]:
    return [sys.executable, "-m", "cds_service", "load-fixtures", *args]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(load_fixtures(*args), capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def test_waits_for_a_server_that_starts_late_then_loads(two_cases: Path):
    port = free_port()
    fhir = Fhir()
    started = time.monotonic()
    process = subprocess.Popen(
        load_fixtures("--fhir", f"http://127.0.0.1:{port}/fhir", "--cases", str(two_cases), "--wait", "60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        time.sleep(3)  # nothing listens yet: connections are refused
        assert process.poll() is None, process.communicate()
        with fhir_server(fhir, port):
            stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "synthetic patients on" in stdout and "loaded" in stdout
    assert len(fhir.transactions) == 1
    assert fhir.metadata_calls and fhir.metadata_calls[0] < fhir.transaction_times[0]
    # it polls every 2 s, so it notices the server within about one interval of it coming up
    assert fhir.metadata_calls[0] - started < 3 + 2 + 1.5


def test_a_server_that_answers_503_while_starting_is_waited_for(two_cases: Path):
    fhir = Fhir(not_ready=2)
    with fhir_server(fhir) as url:
        result = run("--fhir", url, "--cases", str(two_cases), "--wait", "30")
    assert result.returncode == 0, result.stderr
    assert len(fhir.metadata_calls) == 3
    gaps = [b - a for a, b in zip(fhir.metadata_calls, fhir.metadata_calls[1:], strict=False)]
    assert all(1.8 <= gap <= 3.5 for gap in gaps), gaps  # every 2 s, not a busy loop
    assert len(fhir.transactions) == 1


def test_gives_up_with_exit_1_when_the_time_runs_out(two_cases: Path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    result = run("--fhir", f"http://127.0.0.1:{port}/fhir", "--cases", str(two_cases), "--wait", "1")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert f"http://127.0.0.1:{port}/fhir/metadata" in result.stderr
    assert "within 1 s" in result.stderr
    assert "ConnectError" in result.stderr  # the last answer, so the operator knows why
    assert elapsed < 15  # interpreter start-up plus one second, not the default HTTP timeouts


def test_a_server_that_never_gets_ready_is_reported_with_its_last_status(two_cases: Path):
    fhir = Fhir(not_ready=1_000)
    with fhir_server(fhir) as url:
        result = run("--fhir", url, "--cases", str(two_cases), "--wait", "3")
    assert result.returncode == 1
    assert "last: HTTP 503" in result.stderr
    assert 2 <= len(fhir.metadata_calls) <= 3
    assert fhir.transactions == []  # nothing is sent to a server that is not ready


def test_without_wait_it_loads_at_once_and_does_not_probe(two_cases: Path):
    fhir = Fhir(not_ready=1_000)
    with fhir_server(fhir) as url:
        result = run("--fhir", url, "--cases", str(two_cases))
    assert result.returncode == 0, result.stderr
    assert fhir.metadata_calls == []
    assert len(fhir.transactions) == 1


def test_without_a_server_and_without_wait_it_fails_at_once(two_cases: Path):
    port = free_port()
    result = run("--fhir", f"http://127.0.0.1:{port}/fhir", "--cases", str(two_cases))
    assert result.returncode == 1
    assert result.stderr.startswith("error:")


def test_a_negative_wait_is_refused():
    result = run("--fhir", "http://127.0.0.1:9/fhir", "--wait", "-5")
    assert result.returncode == 2
    assert "--wait" in result.stderr


def test_a_folder_without_cases_is_an_error_not_an_empty_load(tmp_path: Path):
    fhir = Fhir()
    with fhir_server(fhir) as url:
        result = run("--fhir", url, "--cases", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert "no synthetic cases" in result.stderr and "--cases" in result.stderr
    assert fhir.transactions == []
