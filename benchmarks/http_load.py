"""HTTP under load on loopback: wrk at fixed concurrency against the service and, in the same run, against
the floor endpoint (same uvicorn, worker count and JSON library; only parses the body). The POST body is the
full CDS Hooks request with complete prefetch for the 100-resource patient."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import orjson
import servers
from patients import Patient, request_body

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*all")
f:close()

function done(summary, latency, requests)
  io.write("WRKJSON ", string.format(
    '{"requests": %%d, "duration_us": %%d, "bytes": %%d, "errors_connect": %%d, "errors_read": %%d, ' ..
    '"errors_write": %%d, "errors_status": %%d, "errors_timeout": %%d, "p50_us": %%d, "p90_us": %%d, ' ..
    '"p99_us": %%d, "mean_us": %%f, "max_us": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def ensure_wrk() -> str:
    """wrk from Debian (`apt-get install -y wrk`) if it is not on PATH yet."""
    found = shutil.which("wrk")
    if found:
        return found
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        subprocess.run(install, capture_output=True, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    return (out.stdout + out.stderr).splitlines()[0].strip()


def run_wrk(wrk: str, url: str, body_file: Path, connections: int, threads: int, seconds: int) -> dict:
    script = Path(tempfile.mkstemp(prefix="bench-wrk-", suffix=".lua")[1])
    script.write_text(LUA % {"body": body_file})
    command = [
        wrk,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    match = re.search(r"^WRKJSON (.*)$", out.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no summary: {out.stdout}\n{out.stderr}")
    result = json.loads(match.group(1))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["p50_ms"], result["p90_ms"], result["p99_ms"] = (
        result["p50_us"] / 1000,
        result["p90_us"] / 1000,
        result["p99_us"] / 1000,
    )
    result["command"] = " ".join([*command[:-3], "-s", "post.lua", url])
    return result


def run(
    patient: Patient,
    quick: bool = False,
    workers: int = 1,
    connections: int = 16,
    threads: int = 2,
    hooks: tuple[str, ...] = ("patient-view", "select-removal"),
) -> dict[str, Any]:
    wrk = ensure_wrk()
    seconds = 5 if quick else 15
    service = servers.service(workers)
    floor = servers.floor(workers)
    results: dict[str, Any] = {
        "wrk": wrk_version(wrk),
        "connections": connections,
        "threads": threads,
        "seconds": seconds,
        "workers": workers,
        "patient_resources": patient.size,
        "runs": [],
    }
    try:
        for call_name in hooks:
            body = request_body(patient, call_name)
            raw = orjson.dumps(body)
            body_file = Path(tempfile.mkstemp(prefix="bench-body-", suffix=".json")[1])
            body_file.write_bytes(raw)
            path = f"/cds-services/postfusion-pain-{body['hook']}"
            check = servers.post(service.base, path, raw)
            check.raise_for_status()
            cards = sorted(c["source"]["topic"]["code"] for c in check.json()["cards"])
            servers.post(floor.base, path, raw).raise_for_status()
            # a short warm-up of each, then the measured runs back to back
            run_wrk(wrk, service.base + path, body_file, connections, threads, 2)
            run_wrk(wrk, floor.base + path, body_file, connections, threads, 2)
            measured_service = run_wrk(wrk, service.base + path, body_file, connections, threads, seconds)
            measured_floor = run_wrk(wrk, floor.base + path, body_file, connections, threads, seconds)
            results["runs"].append(
                {
                    "hook": body["hook"],
                    "call": call_name,
                    "body_bytes": len(raw),
                    "cards": cards,
                    "service": measured_service,
                    "floor": measured_floor,
                    "throughput_ratio": measured_service["rps"] / measured_floor["rps"],
                    "p50_ratio": measured_service["p50_ms"] / measured_floor["p50_ms"],
                    "p99_ratio": measured_service["p99_ms"] / measured_floor["p99_ms"],
                }
            )
        results["service_peak_rss_kib"] = {pid: servers.memory_kib(pid) for pid in service.worker_pids()}
        results["floor_peak_rss_kib"] = {pid: servers.memory_kib(pid) for pid in floor.worker_pids()}
    finally:
        service.stop()
        floor.stop()
    return results


if __name__ == "__main__":
    import sys

    from patients import grown

    print(json.dumps(run(grown(100), "--quick" in sys.argv), indent=2))
