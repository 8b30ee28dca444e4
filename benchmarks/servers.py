"""Start and stop uvicorn servers on loopback for the HTTP benchmarks, and read a process's memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(fhir_allowed: str = "") -> dict[str, str]:
    data = Path(tempfile.mkdtemp(prefix="cds-bench-"))
    env = dict(os.environ)
    env.update(
        CDS_AUTH="off",
        CDS_FHIR_ALLOW_HTTP="true",
        CDS_FHIR_ALLOWED_SERVERS=fhir_allowed,
        CDS_RELOAD="false",
        CDS_LOG_LEVEL="WARNING",
        CDS_DATABASE_URL=f"sqlite+aiosqlite:///{data}/feedback.sqlite3",
    )
    return env


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The process serving requests: uvicorn with one worker serves in its own process; with more,
        the children of the supervisor."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        kids = [int(p) for p in children.read_text().split()] if children.exists() else []
        # uvicorn's multiprocess supervisor also starts a resource-tracker-free spawn child per worker
        return kids or [self.process.pid]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start(
    name: str, target: str, workers: int = 1, env: dict[str, str] | None = None, factory: bool = False
) -> Server:
    """`python -m uvicorn <target>` with identical flags for the service and the floor."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    args = [
        PYTHON,
        "-m",
        "uvicorn",
        target,
        "--app-dir",
        str(BENCH),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if factory:
        args.append("--factory")
    process = subprocess.Popen(
        args, cwd=ROOT, env=env or service_env(), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        server.stop()
        raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
    time.sleep(0.5 if workers == 1 else 2.0)
    return server


def service(workers: int = 1, fhir_allowed: str = "") -> Server:
    return start("service", "bench_app:app", workers, service_env(fhir_allowed), factory=True)


def floor(workers: int = 1) -> Server:
    return start("floor", "floor_app:app", workers)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, KiB, from /proc/<pid>/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def post(base: str, path: str, body: bytes) -> httpx.Response:
    return httpx.post(
        base + path, content=body, headers={"Content-Type": "application/json"}, timeout=30, trust_env=False
    )
