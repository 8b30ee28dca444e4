"""The authenticated path under load: the service with `CDS_AUTH=jwt` (ES384 signature, claims, and the
replay check of `jti` in the store) against the same service with auth off, on SQLite and on PostgreSQL,
with wrk as in http_load.

Every request carries its own token, signed before the run (unique `jti`, `aud` = CDS_PUBLIC_BASE_URL +
path, `iss`/`kid`/`jku` of the one trusted client), so none is refused as a replay; each wrk thread sends
the next token of its own slice. The JWKS comes from a real loopback HTTP server through the allowlisted
`jku` (jwt_tokens). Both servers get the same requests, tokens included (auth off ignores them), and log at
INFO, so both write the per-call audit line (a WARNING with auth off, INFO with jwt).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import auth_costs
import http_load
import jwt_tokens
import servers
from patients import Patient

BENCH = Path(__file__).resolve().parent
WARMUP_S = 2
HEADROOM = 2.0  # tokens signed per run: twice what auth off served in its warm-up, for the whole run


def _env(mode: str, store: str | None, client: jwt_tokens.Client, port: int) -> dict[str, str]:
    settings = {
        "CDS_AUTH": mode,
        "CDS_LOG_LEVEL": "INFO",
        "CDS_PATIENT_KEY_SECRET": secrets.token_hex(32),  # PostgreSQL requires one; SQLite gets one too
    }
    if mode == "jwt":
        settings["CDS_TRUSTED_CLIENTS"] = str(client.trusted_clients)
        settings["CDS_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    if store is not None:
        settings["CDS_DATABASE_URL"] = store
    return servers.service_env(**settings)


def _checks(server: servers.Server, call: http_load.Call, client: jwt_tokens.Client) -> dict[str, Any]:
    """Before the load: a fresh token is served, the same token again and no token are refused (401)."""
    (token,) = client.tokens(server.base + call.path, 1)
    first = servers.post(server.base, call.path, call.raw, token)
    return {
        "cards": http_load.card_codes(first),
        "replay_status": servers.post(server.base, call.path, call.raw, token).status_code,
        "no_token_status": servers.post(server.base, call.path, call.raw).status_code,
    }


def _compare(
    wrk: str,
    off: servers.Server,
    on: servers.Server,
    call: http_load.Call,
    client: jwt_tokens.Client,
    seconds: int,
    connections: int,
    threads: int,
) -> dict[str, Any]:
    cards = http_load.card_codes(servers.post(off.base, call.path, call.raw))
    checks = _checks(on, call, client)
    warm = http_load.run_wrk(wrk, off.base + call.path, call.file, connections, threads, WARMUP_S)
    per_second = HEADROOM * warm["rps"] + 50

    def tokens(run_seconds: int) -> list[Path]:
        count = int(per_second * (run_seconds + 1))
        return jwt_tokens.slices(client.tokens(on.base + call.path, count), threads)

    http_load.run_wrk(wrk, on.base + call.path, call.file, connections, threads, WARMUP_S, tokens(WARMUP_S))
    files = tokens(seconds)
    # the same files for both: auth off ignores the header, jwt has never seen these tokens
    off_run = http_load.measured(wrk, off, call, connections, threads, seconds, files)
    on_run = http_load.measured(wrk, on, call, connections, threads, seconds, files)
    return {
        "hook": call.hook,
        "call": call.name,
        "cards": cards,
        "same_cards": cards == checks["cards"],
        "checks": checks,
        "tokens_signed": int(per_second * (seconds + 1)),
        "off": off_run,
        "jwt": on_run,
        "throughput_ratio": on_run["rps"] / off_run["rps"],
        "p50_ratio": on_run["p50_ms"] / off_run["p50_ms"],
        "cpu_ratio": off_run["cpu_ms_per_request"] / on_run["cpu_ms_per_request"],
        "non_2xx": on_run["errors_status"] + off_run["errors_status"],
    }


def _store(
    wrk: str,
    name: str,
    url: str | None,
    client: jwt_tokens.Client,
    calls: list[http_load.Call],
    seconds: int,
    connections: int,
    threads: int,
) -> list[dict[str, Any]]:
    off_port, on_port = servers.free_port(), servers.free_port()
    off = servers.service(env=_env("off", url, client, off_port), port=off_port)
    try:
        on = servers.service(env=_env("jwt", url, client, on_port), port=on_port)
    except Exception:
        off.stop()
        raise
    try:
        rows = [_compare(wrk, off, on, call, client, seconds, connections, threads) for call in calls]
    finally:
        off.stop()
        on.stop()
    return [{"store": name, **row} for row in rows]


def run(
    patient: Patient,
    quick: bool = False,
    connections: int = 16,
    threads: int = 2,
    hooks: tuple[str, ...] = ("patient-view", "select-removal"),
    stores: tuple[str, ...] = ("sqlite", "postgresql"),
) -> dict[str, Any]:
    wrk = http_load.ensure_wrk()
    results = http_load.load_settings(wrk, patient, connections, threads, quick) | {"workers": 1}
    seconds = results["seconds"]
    calls = [http_load.prepare(patient, name) for name in hooks]
    postgres = servers.Postgres()
    with jwt_tokens.client() as client:
        try:
            urls = {"sqlite": None, "postgresql": postgres.begin() if "postgresql" in stores else None}
            if "postgresql" in stores and urls["postgresql"] is None:
                results["postgresql_skipped"] = postgres.problem
            results["costs"] = auth_costs.run(client, urls["postgresql"], quick)
            for store in stores:
                if store == "sqlite" or urls[store] is not None:
                    results["runs"] += _store(
                        wrk, store, urls[store], client, calls, seconds, connections, threads
                    )
        finally:
            postgres.end()
        results["jwks_fetches"] = client.jwks.fetches
    return results


MODULES = ("auth_load.py", "auth_costs.py", "jwt_tokens.py", "http_load.py", "servers.py")


def run_in(tree: Path, quick: bool = False) -> dict[str, Any]:
    """This benchmark against the service of another checkout (the report's "before"): these modules are
    copied over that tree's (call it after the tree's own suite has run) and run there, so the old service
    meets the same load, tokens and stores."""
    for name in MODULES:
        shutil.copy(BENCH / name, tree / "benchmarks" / name)
    command = [sys.executable, "benchmarks/auth_load.py", *(["--quick"] if quick else [])]
    env = {**os.environ, "PYTHONPATH": str(tree)}  # its cds_service, not the one installed in the venv
    out = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout)


if __name__ == "__main__":
    from patients import grown

    only = tuple(a.removeprefix("--store=") for a in sys.argv if a.startswith("--store="))
    print(
        json.dumps(run(grown(100), "--quick" in sys.argv, stores=only or ("sqlite", "postgresql")), indent=2)
    )
