"""Memory: the service with one worker; RSS (VmRSS) and peak RSS (VmHWM) from /proc/<pid>/status after a
warm-up, after 5,000 requests and after 5,000 more, all full-prefetch calls for the 100-resource patient
(patient-view and order-select alternating), sent over keep-alive connections at a concurrency of 8."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import httpx
import orjson
import servers
from patients import Patient, request_body

CONCURRENCY = 8


async def _send(base: str, bodies: list[tuple[str, bytes]], count: int) -> int:
    failures = 0
    counter = iter(range(count))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30, trust_env=False) as client:

        async def worker() -> None:
            nonlocal failures
            for index in counter:
                path, raw = bodies[index % len(bodies)]
                response = await client.post(path, content=raw, headers={"Content-Type": "application/json"})
                failures += response.status_code != 200

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return failures


def run(patient: Patient, quick: bool = False) -> dict[str, Any]:
    step = 5000  # two steps: the 10k requests the target names, quick or not
    bodies = []
    for name in ("patient-view", "select-removal"):
        body = request_body(patient, name)
        bodies.append((f"/cds-services/postfusion-pain-{body['hook']}", orjson.dumps(body)))
    server = servers.service(workers=1)
    try:
        pid = server.worker_pids()[0]
        points = [{"after_requests": 0, **servers.memory_kib(pid)}]
        warmup = 200
        failures = asyncio.run(_send(server.base, bodies, warmup))
        points.append({"after_requests": warmup, **servers.memory_kib(pid)})
        started = time.perf_counter()
        for total in (step, 2 * step):
            failures += asyncio.run(_send(server.base, bodies, step))
            points.append({"after_requests": warmup + total, **servers.memory_kib(pid)})
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    gc.collect()
    first, second = points[2], points[3]
    return {
        "worker_pid": pid,
        "concurrency": CONCURRENCY,
        "step": step,
        "warmup": 200,
        "points": points,
        "failures": failures,
        "seconds": seconds,
        "rss_growth_pct_first_to_second_step": (second["VmRSS"] - first["VmRSS"]) / first["VmRSS"] * 100,
        "peak_rss_kib": second["VmHWM"],
    }


if __name__ == "__main__":
    import json
    import sys

    from patients import grown

    print(json.dumps(run(grown(100), "--quick" in sys.argv), indent=2))
