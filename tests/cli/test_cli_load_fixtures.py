"""`cds-service load-fixtures --wait SECONDS`: wait for the FHIR server to answer /metadata, then load.

This is what the compose file's one-shot job runs while HAPI is still starting, so the job neither fails on
the first refused connection nor hangs when the server never comes up.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.fhir_server import FhirState, free_port, running_fhir_server
from support.hooks import ROOT
from support.waiting import wait_for

CASES = ROOT / "fixtures" / "patients"
SNMP = Path("/proc/net/snmp")


def refused_connections() -> int:
    """TCP connection attempts refused so far on this host (Linux: Tcp AttemptFails in /proc/net/snmp).

    A connection to a port nobody listens on is answered with a reset before it is established: no
    listener can count it, but the kernel does."""
    header, values = (line.split() for line in SNMP.read_text().splitlines() if line.startswith("Tcp:"))
    return int(dict(zip(header, values, strict=True))["AttemptFails"])


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


@pytest.mark.skipif(not SNMP.is_file(), reason="counts refused connections in Linux's /proc/net/snmp")
def test_waits_for_a_server_that_starts_late_then_loads(two_cases: Path, tmp_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/fhir"
    fhir = FhirState()
    errors = tmp_path / "stderr.txt"
    refused_before = refused_connections()
    with errors.open("w") as stderr_file:
        process = subprocess.Popen(
            load_fixtures("--fhir", url, "--cases", str(two_cases), "--wait", "60"),
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            cwd=ROOT,
        )
    try:
        # nothing listens yet: the server starts only once the command is polling and a probe was refused
        wait_for(
            lambda: f"{url}/metadata" in errors.read_text() and refused_connections() > refused_before,
            timeout=30,
            what="the command to log that it waits, and a refused connection",
        )
        assert process.poll() is None, (process.communicate(), errors.read_text())
        with running_fhir_server(fhir, port):
            up = time.monotonic()
            stdout, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors.read_text()
    assert "synthetic patients on" in stdout and "loaded" in stdout
    assert len(fhir.transactions) == 1
    assert fhir.metadata_calls and fhir.metadata_calls[0] < fhir.transaction_times[0]
    # it polls every 2 s, so it notices the server within about one interval of it coming up
    assert fhir.metadata_calls[0] - up < 2 + 1.5


def test_a_server_that_answers_503_while_starting_is_waited_for(two_cases: Path):
    fhir = FhirState(not_ready=2)
    with running_fhir_server(fhir) as (url, _):
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
    fhir = FhirState(not_ready=1_000)
    with running_fhir_server(fhir) as (url, _):
        result = run("--fhir", url, "--cases", str(two_cases), "--wait", "3")
    assert result.returncode == 1
    assert "last: HTTP 503" in result.stderr
    assert 2 <= len(fhir.metadata_calls) <= 3
    assert fhir.transactions == []  # nothing is sent to a server that is not ready


def test_without_wait_it_loads_at_once_and_does_not_probe(two_cases: Path):
    fhir = FhirState(not_ready=1_000)
    with running_fhir_server(fhir) as (url, _):
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
    fhir = FhirState()
    with running_fhir_server(fhir) as (url, _):
        result = run("--fhir", url, "--cases", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert "no synthetic cases" in result.stderr and "--cases" in result.stderr
    assert fhir.transactions == []
