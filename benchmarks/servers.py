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


def service_env(fhir_allowed: str = "", **overrides: str) -> dict[str, str]:
    """The service's settings for a benchmark: dev-mode auth and a fresh SQLite store unless `overrides`
    (CDS_* names) say otherwise."""
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
    env.update(overrides)
    return env


def migrate(env: dict[str, str]) -> None:
    """Upgrade the store once before several workers start, as `cds-service serve` does: workers that each
    migrate a fresh SQLite file at the same moment race on its first table."""
    code = "import sys; from cds_service.cli import main; sys.exit(main(['migrate']))"
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, check=True)


def multiprocess_metrics(env: dict[str, str], workers: int) -> dict[str, str]:
    """With several workers, each writes its metrics to files in a shared folder, as `cds-service serve`
    arranges (`PROMETHEUS_MULTIPROC_DIR`), so two workers pay what they pay in production."""
    if workers == 1:
        return env
    return {**env, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="cds-bench-metrics-")}


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
        """The processes serving requests: uvicorn with one worker serves in its own process; with more,
        the spawned children of the supervisor (not multiprocessing's resource tracker beside them)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        kids = [int(p) for p in children.read_text().split()] if children.exists() else []
        workers = [pid for pid in kids if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        return workers or [self.process.pid]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start(
    name: str,
    target: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    factory: bool = False,
    port: int | None = None,
) -> Server:
    """`python -m uvicorn <target>` with identical flags for the service and the floor; `port` when the
    caller must know it beforehand (the JWT audience names it)."""
    port = port or free_port()
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


def service(
    workers: int = 1, fhir_allowed: str = "", env: dict[str, str] | None = None, port: int | None = None
) -> Server:
    """The service (benchmarks/bench_app.py) with `env` (default: `service_env`), migrated first when
    several workers start."""
    env = multiprocess_metrics(env or service_env(fhir_allowed), workers)
    if workers > 1:
        migrate(env)
    return start("service", "bench_app:app", workers, env, factory=True, port=port)


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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes (all their threads) have used, from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / ticks


def post(base: str, path: str, body: bytes, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(base + path, content=body, headers=headers, timeout=30, trust_env=False)


class Postgres:
    """A PostgreSQL server for the run (scripts/postgres.sh, Debian's package): ours if we started it, else
    the one already running in the same PG_RUN_DIR (left alone). `url` stays None, with `problem` saying
    why, when PostgreSQL is not installed or does not start."""

    RUN_DIR = "/tmp/pg-bench"

    def __init__(self) -> None:
        self.url: str | None = None
        self.problem: str | None = None
        self.started_here = False
        self._env = {**os.environ, "PG_RUN_DIR": self.RUN_DIR}

    def begin(self) -> str | None:
        if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
            self.problem = "PostgreSQL is not installed (apt-get install postgresql), so it is skipped"
            return None
        script = str(ROOT / "scripts" / "postgres.sh")
        status = subprocess.run([script, "status"], capture_output=True, text=True, env=self._env)
        if status.returncode != 0:
            started = subprocess.run([script, "start"], capture_output=True, text=True, env=self._env)
            if started.returncode != 0:
                self.problem = f"scripts/postgres.sh start failed: {started.stderr.strip()[-300:]}"
                return None
            self.started_here, status = True, started
        self.url = status.stdout.strip().splitlines()[-1]
        return self.url

    def end(self) -> None:
        if self.started_here:
            subprocess.run(
                [str(ROOT / "scripts" / "postgres.sh"), "stop"], capture_output=True, env=self._env
            )
