"""HTTP under load on loopback: wrk at fixed concurrency against the service and, in the same run, against
the floor endpoint (same uvicorn, worker count and JSON library; only parses the body). The POST body is the
full CDS Hooks request with complete prefetch for the 100-resource patient."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import servers
from patients import Patient, request_body

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("%(body)s", "rb"))
wrk.body = f:read("*all")
f:close()

local threads = {}
function setup(thread)
  thread:set("slice", #threads)
  table.insert(threads, thread)
end
%(tokens)s
function done(summary, latency, requests)
  local used, missing = 0, 0
  for _, thread in ipairs(threads) do
    local n, available = thread:get("used") or 0, thread:get("available") or 0
    used = used + n
    if n > available then missing = missing + n - available end
  end
  io.write("WRKJSON ", string.format(
    '{"requests": %%d, "duration_us": %%d, "bytes": %%d, "errors_connect": %%d, "errors_read": %%d, ' ..
    '"errors_write": %%d, "errors_status": %%d, "errors_timeout": %%d, "p50_us": %%d, "p90_us": %%d, ' ..
    '"p99_us": %%d, "mean_us": %%f, "max_us": %%d, "tokens_used": %%d, "tokens_missing": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    used, missing))
end
"""
# Each thread reads its own slice of pre-signed tokens and sends the next one with every request, so no two
# requests carry the same `jti`; a thread that runs out sends a token the service refuses (a non-2xx).
TOKENS_LUA = """
function init(args)
  tokens = {}
  for line in io.lines("%(tokens_dir)s/tokens-" .. slice .. ".txt") do tokens[#tokens + 1] = line end
  available, used = #tokens, 0
end

function request()
  used = used + 1
  wrk.headers["Authorization"] = "Bearer " .. (tokens[used] or "exhausted")
  return wrk.format()
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


def run_wrk(
    wrk: str,
    url: str,
    body_file: Path,
    connections: int,
    threads: int,
    seconds: int,
    tokens: list[Path] | None = None,
) -> dict:
    """One wrk run; with `tokens` (one file per thread, see jwt_tokens.slices) every request carries its
    own bearer token."""
    script = Path(tempfile.mkstemp(prefix="bench-wrk-", suffix=".lua")[1])
    per_request = TOKENS_LUA % {"tokens_dir": tokens[0].parent} if tokens else ""
    script.write_text(LUA % {"body": body_file, "tokens": per_request})
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


@dataclass(frozen=True)
class Call:
    """One hook call's request body, on disk for wrk, and the service path it is posted to."""

    name: str
    hook: str
    raw: bytes
    file: Path
    path: str


def prepare(patient: Patient, call_name: str) -> Call:
    body = request_body(patient, call_name)
    raw = orjson.dumps(body)
    file = Path(tempfile.mkstemp(prefix="bench-body-", suffix=".json")[1])
    file.write_bytes(raw)
    return Call(call_name, body["hook"], raw, file, f"/cds-services/postfusion-pain-{body['hook']}")


def measured(
    wrk: str,
    server: servers.Server,
    call: Call,
    connections: int,
    threads: int,
    seconds: int,
    tokens: list[Path] | None = None,
) -> dict[str, Any]:
    """A wrk run with the server's CPU time per answered request: a steadier measure than requests per
    second on a machine where other work competes for the cores."""
    pids = server.worker_pids()
    before = servers.cpu_seconds(pids)
    result = run_wrk(wrk, server.base + call.path, call.file, connections, threads, seconds, tokens)
    result["cpu_ms_per_request"] = (servers.cpu_seconds(pids) - before) * 1e3 / max(result["requests"], 1)
    return result


def card_codes(response: httpx.Response) -> list[str]:
    response.raise_for_status()
    return sorted(c["source"]["topic"]["code"] for c in response.json()["cards"])


def load_settings(wrk: str, patient: Patient, connections: int, threads: int, quick: bool) -> dict[str, Any]:
    """What every load section records of its wrk runs (`runs` to be filled), the same for each."""
    return {
        "wrk": wrk_version(wrk),
        "connections": connections,
        "threads": threads,
        "seconds": 5 if quick else 15,
        "patient_resources": patient.size,
        "runs": [],
    }


def run(
    patient: Patient,
    quick: bool = False,
    workers: int = 1,
    connections: int = 16,
    threads: int = 2,
    hooks: tuple[str, ...] = ("patient-view", "select-removal"),
) -> dict[str, Any]:
    wrk = ensure_wrk()
    results = load_settings(wrk, patient, connections, threads, quick) | {"workers": workers}
    seconds = results["seconds"]
    service = servers.service(workers)
    floor = servers.floor(workers)
    # the same service without the per-call quiet-cards lookup (CDS_QUIET_CARDS=false): what that costs
    unquiet = servers.service(workers, env=servers.service_env(CDS_QUIET_CARDS="false"))
    try:
        for call_name in hooks:
            call = prepare(patient, call_name)
            path, raw, body_file = call.path, call.raw, call.file
            cards = card_codes(servers.post(service.base, path, raw))
            servers.post(floor.base, path, raw).raise_for_status()
            # a short warm-up of each, then the measured runs back to back
            run_wrk(wrk, service.base + path, body_file, connections, threads, 2)
            run_wrk(wrk, floor.base + path, body_file, connections, threads, 2)
            measured_service = run_wrk(wrk, service.base + path, body_file, connections, threads, seconds)
            measured_floor = run_wrk(wrk, floor.base + path, body_file, connections, threads, seconds)
            servers.post(unquiet.base, path, raw).raise_for_status()
            run_wrk(wrk, unquiet.base + path, body_file, connections, threads, 2)
            measured_unquiet = run_wrk(wrk, unquiet.base + path, body_file, connections, threads, seconds)
            results["runs"].append(
                {
                    "hook": call.hook,
                    "call": call_name,
                    "body_bytes": len(raw),
                    "cards": cards,
                    "service": measured_service,
                    "floor": measured_floor,
                    "throughput_ratio": measured_service["rps"] / measured_floor["rps"],
                    "quiet_off": measured_unquiet,
                    "quiet_off_ratio": measured_unquiet["rps"] / measured_floor["rps"],
                    "p50_ratio": measured_service["p50_ms"] / measured_floor["p50_ms"],
                    "p99_ratio": measured_service["p99_ms"] / measured_floor["p99_ms"],
                }
            )
        results["service_peak_rss_kib"] = {pid: servers.memory_kib(pid) for pid in service.worker_pids()}
        results["floor_peak_rss_kib"] = {pid: servers.memory_kib(pid) for pid in floor.worker_pids()}
    finally:
        service.stop()
        floor.stop()
        unquiet.stop()
    return results


if __name__ == "__main__":
    import sys

    from patients import grown

    print(json.dumps(run(grown(100), "--quick" in sys.argv), indent=2))
