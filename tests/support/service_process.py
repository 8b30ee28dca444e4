"""`cds-service serve` as a real process on a free loopback port: what runs in production (uvicorn with the
service's own protocol and settings), for tests of what only the server can do."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.fhir_server import free_port
from support.waiting import WaitTimeout, wait_for

SERVE = [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1"]


@dataclass
class ServiceProcess:
    base: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def _ready(service: ServiceProcess) -> bool:
    assert service.process.poll() is None, service.log.read_text()
    return httpx.get(f"{service.base}/readyz", timeout=1).status_code == 200


@contextlib.contextmanager
def service_process(folder: Path, workers: int = 1, **settings: str) -> Iterator[ServiceProcess]:
    """Serve from `folder` (its SQLite store and logs there) with CDS_AUTH=off and `settings` (CDS_* names);
    stopped with SIGTERM, then SIGKILL to its whole process group, when the block ends."""
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "CDS_AUTH": "off",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'cds.sqlite3'}",
        "CDS_RELOAD": "false",
        "CDS_LOG_LEVEL": "WARNING",
        **settings,
    }
    log = folder / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), "--workers", str(workers)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the supervisor and its workers stop together
        )
    service = ServiceProcess(f"http://127.0.0.1:{port}", port, process, log)
    try:
        try:
            wait_for(
                lambda: _ready(service),
                timeout=60,
                interval=0.05,
                what="the service to be ready",
                ignoring=(httpx.HTTPError,),
            )
        except WaitTimeout as timeout:
            raise AssertionError(log.read_text()) from timeout
        yield service
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
