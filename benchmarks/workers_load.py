"""Two uvicorn workers against one: the service (auth off, as in http_load) under the same wrk load, each
on a fresh SQLite store (migrated once before the workers start, as `cds-service serve` does), both hooks
on the 100-resource patient. wrk runs on the same cores, so two workers cannot double the throughput here."""

from __future__ import annotations

import os
from typing import Any

import http_load
import servers
from patients import Patient

WARMUP_S = 2


def run(
    patient: Patient,
    quick: bool = False,
    connections: int = 16,
    threads: int = 2,
    hooks: tuple[str, ...] = ("patient-view", "select-removal"),
    workers: tuple[int, int] = (1, 2),
) -> dict[str, Any]:
    wrk = http_load.ensure_wrk()
    results = http_load.load_settings(wrk, patient, connections, threads, quick) | {
        "cpus": os.cpu_count(),
        "workers": list(workers),
    }
    seconds = results["seconds"]
    calls = [http_load.prepare(patient, name) for name in hooks]
    one, two = servers.service(workers[0]), None
    try:
        two = servers.service(workers[1])
        results["worker_pids"] = {"one": one.worker_pids(), "two": two.worker_pids()}
        for call in calls:
            cards = [http_load.card_codes(servers.post(s.base, call.path, call.raw)) for s in (one, two)]
            for server in (one, two):
                http_load.run_wrk(wrk, server.base + call.path, call.file, connections, threads, WARMUP_S)
            single = http_load.measured(wrk, one, call, connections, threads, seconds)
            double = http_load.measured(wrk, two, call, connections, threads, seconds)
            results["runs"].append(
                {
                    "hook": call.hook,
                    "call": call.name,
                    "cards": cards[0],
                    "same_cards": cards[0] == cards[1],
                    "one": single,
                    "two": double,
                    "throughput_ratio": double["rps"] / single["rps"],
                    "p50_ratio": double["p50_ms"] / single["p50_ms"],
                    "non_2xx": single["errors_status"] + double["errors_status"],
                }
            )
    finally:
        one.stop()
        if two is not None:
            two.stop()
    return results


if __name__ == "__main__":
    import json
    import sys

    from patients import grown

    print(json.dumps(run(grown(100), "--quick" in sys.argv), indent=2))
