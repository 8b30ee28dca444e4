# ruff: noqa: E501, RUF001  (Markdown text: long table rows, micro and multiplication signs)
"""Targets and the Markdown report (docs/benchmarks.md) from the results of one run."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _cmd(args: list[str]) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20, cwd=ROOT)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "n/a"


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    versions = {}
    for package in (
        "uvicorn",
        "starlette",
        "orjson",
        "httpx",
        "pydantic",
        "datalogic-py",
        "pyinstrument",
        "uvloop",
        "httptools",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    import os

    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _cmd(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": sys.version.split()[0],
        "packages": versions,
        "java": _cmd(["java", "-version"]),
        "git_commit": _cmd(["git", "rev-parse", "--short", "HEAD"]),
    }


def _get(results: dict, *path: Any) -> Any:
    node: Any = results
    for key in path:
        if (isinstance(node, dict) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and key < len(node)
        ):
            node = node[key]
        else:
            return None
    return node


def _logic_ratio(results: dict) -> float | None:
    rows = _get(results, "logic", "clinical", "rows") or []
    ours = [r["x_hand_written"] for r in rows if r["evaluator"] != "hand-written Python"]
    return max(ours) if ours else None


def _http_ratio(results: dict) -> float | None:
    runs = _get(results, "http", "runs") or []
    return min((r["throughput_ratio"] for r in runs), default=None)


def targets(results: dict) -> list[dict[str, Any]]:
    found = []

    def add(name: str, value: float | None, ok: Any, shown: str, note: str = "") -> None:
        status = "n/a" if value is None else ("PASS" if ok(value) else "FAIL")
        found.append(
            {
                "name": name,
                "value": value,
                "status": status,
                "measured": "not measured" + (f" ({note})" if note else "") if value is None else shown,
            }
        )

    ratio = _logic_ratio(results)
    add(
        "clinical engine on the real plan definitions within 3x of hand-written Python",
        ratio,
        lambda v: v <= 3,
        f"{ratio:.2f}x" if ratio else "",
    )
    ratio = _http_ratio(results)
    add(
        "service throughput >= 50% of the floor endpoint (100-resource patient)",
        ratio,
        lambda v: v >= 0.5,
        f"{ratio * 100:.1f}% (worst hook)" if ratio else "",
    )
    found.append(auth_target(results))
    loads = [r for r in _get(results, "inprocess", "rows") or [] if r["size"] in (100, 1000)]
    worst_loads = max((r["x_loads"] for r in loads if "x_loads" in r), default=None)
    add(
        "in-process call_service <= 3x orjson.loads of the same body, at 100 and 1000 resources",
        worst_loads,
        lambda v: v <= 3,
        ", ".join(f"{r['hook']} {r['size']}: {r['x_loads']:.1f}x" for r in loads if "x_loads" in r),
    )
    growth = _get(results, "inprocess", "growth") or {}
    worst = max((g["x_1000_vs_100_median"] for g in growth.values()), default=None)
    add(
        "cost linear in record size: 1000 resources at most 10x the 100-resource call (in-process median)",
        worst,
        lambda v: v <= 10,
        f"{worst:.2f}x (worst hook)" if worst else "",
    )
    add(
        "cards identical at every size (checked in the run)",
        1.0 if _get(results, "inprocess", "same_cards_at_every_size") else 0.0,
        lambda v: v == 1.0,
        "identical" if _get(results, "inprocess", "same_cards_at_every_size") else "DIFFER",
    )
    cql = results.get("cql") or {}
    worst_cql = min((t["x_median"] for t in cql.get("timings") or []), default=None)
    add(
        ">= 50x faster than the CQL engine per decision at 20, 100 and 1000 resources (same decision, checked)",
        worst_cql,
        lambda v: v >= 50 and cql.get("equivalent") is True,
        f"{worst_cql:.1f}x (worst size, medians)" + ("" if cql.get("equivalent") else "; decisions DIFFER")
        if worst_cql
        else "",
        cql.get("error") or "the CQL section did not run; see section 5",
    )
    fallback = [r["x_plain_median"] for r in _get(results, "fallback", "rows") or [] if "x_plain_median" in r]
    worst_fallback = max(fallback, default=None)
    add(
        "FHIR fallback at default settings <= 1.5x a plain concurrent httpx fetch of the same searches",
        worst_fallback,
        lambda v: v <= 1.5,
        f"{worst_fallback:.2f}x (worst hook, medians)" if worst_fallback else "",
        "HAPI was not run; see section 4",
    )
    growth_pct = _get(results, "memory", "rss_growth_pct_first_to_second_step")
    add(
        "RSS growth under 10% between 5k and 10k requests",
        growth_pct,
        lambda v: v < 10,
        f"{growth_pct:+.2f}%" if growth_pct is not None else "",
    )
    return found


def _f(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render(results: dict) -> str:
    m = results["machine"]
    date = datetime.fromtimestamp(results["started"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    out: list[str] = []
    w = out.append
    w("# Benchmarks\n")
    w(
        f"Generated by `.venv/bin/python {results['command']}` on {date}"
        f" (total {results['finished'] - results['started']:.0f} s, commit `{m['git_commit']}`"
        f"{', quick mode: shorter runs' if results['quick'] else ''}). Every ratio below comes from this one "
        "run on one machine. Raw numbers: `benchmarks/results.json`.\n"
    )
    w("## Machine\n")
    w(
        f"- CPU: {m['cpu']}, {m['cpus']} logical CPUs; memory {m['memory_gib']} GiB; {m['os']}, "
        f"kernel {m['kernel']}"
    )
    w(f"- Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()))
    w(f"- Java: {m['java']}; load generator: {_get(results, 'http', 'wrk') or 'n/a'}\n")

    w("## Targets\n")
    w("| target | measured | result |\n|---|---|---|")
    for t in results["targets"]:
        w(f"| {t['name']} | {t['measured']} | **{t['status']}** |")
    w("")

    w("## How to run\n")
    w(
        "```sh\n.venv/bin/python benchmarks/run.py            # full run, about 30 minutes\n"
        ".venv/bin/python benchmarks/run.py --quick    # shorter runs, about 17 minutes\n"
        ".venv/bin/python benchmarks/run.py --quick --skip before   # without the earlier commit's run\n"
        ".venv/bin/python benchmarks/run.py --skip fallback --skip cql   # without Java and Node\n```\n"
    )
    w(
        "The `before` section needs the git history (it checks the earlier commit out in a temporary worktree); "
        "`cql` needs Java 17 with Maven and Node 20 with npm (it translates `benchmarks/cql/` and installs "
        "its npm packages on first use); `auth` starts its own PostgreSQL with `scripts/postgres.sh` when one "
        "is installed. Each section also runs alone (`benchmarks/inprocess.py`, `before.py`, `cql_peer.py`, `http_load.py`, `auth_load.py [--store=sqlite]`, "
        "`workers_load.py`, `memory.py`, `fallback.py`, "
        "`profile_hooks.py`, `costs.py`, `logic_bench.py`, `facts_bench.py`). `wrk` is installed with "
        "`apt-get install -y wrk` when missing; the fallback section starts HAPI with `scripts/hapi.sh start` "
        "(and stops it) unless one is already running, which it then leaves alone. Servers run with "
        "`CDS_AUTH=off CDS_FHIR_ALLOW_HTTP=true CDS_RELOAD=false CDS_LOG_LEVEL=WARNING`, bound to 127.0.0.1, "
        "started as `python -m uvicorn ... --workers N --log-level warning --no-access-log` (the service via "
        "`benchmarks/bench_app.py`: the production `create_app` with the clock frozen at the cases' T0 "
        "2026-11-01 so the cards are the expected ones).\n"
    )

    w("## Synthetic patients\n")
    w(
        "`benchmarks/patients.py` grows the real case `p25-hw-met-select-vs-sign` (hardware removal criteria "
        "met) with earlier PT episodes, older pain scores, temperatures and smoking-status observations, "
        "resolved unrelated conditions and completed unrelated prescriptions, all with unique ids and dated "
        "so they do not change the decision. Size = resources the order hooks' prefetch returns (patient-view "
        "has one fewer: it does not prefetch DiagnosticReport). The cards are checked to be identical at every "
        f"size: **{_get(results, 'inprocess', 'same_cards_at_every_size')}**.\n"
    )

    w("## 1. Logic: the clinical engine on the real rules, and the standard engine\n")
    clinical = _get(results, "logic", "clinical")
    if clinical:
        w(
            f"The path the service runs: {len(clinical['facts'])} facts of the bundled plan definitions "
            f"({', '.join(f'`{name}`' for name in clinical['facts'])}), compiled by the three-valued clinical "
            f"engine, against the same facts written by hand in `benchmarks/clinical_logic.py`, over "
            f"{clinical['patients']} fixture patients (both checked equal on each first; facts they read are "
            "memoised, as in a request). Median µs for one pass over every patient:\n"
        )
        w("| evaluator | µs/pass | × hand-written |\n|---|---:|---:|")
        for r in clinical["rows"]:
            w(f"| {r['evaluator']} | {r['us_per_pass']:.1f} | {r['x_hand_written']:.2f} |")
        w("")
    rows = _get(results, "logic", "standard", "rows")
    if rows:
        w(
            "The standard (conformance-tested) engine on the reference rule of the research note, median µs "
            "per evaluation over timeit autorange runs, with extra unused facts in the data:\n"
        )
        w("| evaluator | extra facts | µs/eval | × hand-written |\n|---|---:|---:|---:|")
        for r in rows:
            w(
                f"| {r['evaluator']} | {r['extra_facts']} | {r['us_per_eval']:.3f} | {r['x_hand_written']:.2f} |"
            )
        w("")
    else:
        w(f"Not measured: {_get(results, 'logic', 'error')}\n")

    w("## 2. In-process hook evaluation\n")
    rows = _get(results, "inprocess", "rows")
    if rows:
        w(
            "`cds_service.hooks.call_service` with complete prefetch (validation, record indexing, every plan "
            "definition of the hook, response), no HTTP, one event loop; wall time per call.\n"
        )
        w(
            "| hook | resources | calls | median ms | p99 ms | mean ms | orjson.loads ms | × loads | cards |\n"
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"
        )
        for r in rows:
            w(
                f"| {r['hook']} | {r['record_resources']} | {r['n']} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | "
                f"{r['mean_ms']:.3f} | {r['loads_median_ms']:.3f} | {r['x_loads']:.1f} | "
                f"{', '.join(r['cards']) or 'none'} |"
            )
        w("\nGrowth with record size (medians):\n")
        w(
            "| hook | 100 vs 20 | 1000 vs 100 | marginal µs per extra resource (100→1000) |\n|---|---:|---:|---:|"
        )
        for hook, g in results["inprocess"]["growth"].items():
            w(
                f"| {hook} | {_f(g['x_100_vs_20_median'])}x | {g['x_1000_vs_100_median']:.2f}x | "
                f"{g['us_per_resource_100_to_1000']:.1f} |"
            )
        w(
            "\nCost grows linearly with the record (a fixed part for the rules plus a per-resource part for "
            "indexing, shape checks and date parsing); 10x the resources costs less than 10x the time because "
            "the fixed part is amortised.\n"
        )
        w(
            "**Why the 3x-of-`orjson.loads` target is missed.** `orjson.loads` is C; the call is Python. On "
            "this patient the rules read nearly every resource closely (each grown resource is a PT episode, a "
            "pain score, a temperature, a smoking status, a condition or a prescription some rule selects), so "
            "the lazy record saves little here, and what remains is per-resource Python work (code index, "
            "shape check, entry) of several µs each, plus the fixed cost of evaluating every plan of the hook "
            "with its trace (the step costs in section 7 split it). The ratio is nearest the target at 1000 "
            "resources, where parsing grows as fast as the record.\n"
        )
    else:
        w(f"Not measured: {_get(results, 'inprocess', 'error')}\n")

    w("## 3. HTTP under load (loopback)\n")
    http = results.get("http") or {}
    if http.get("runs"):
        w(
            f"wrk, {http['threads']} threads, {http['connections']} connections, {http['seconds']} s per run "
            f"(after a 2 s warm-up of each server), uvicorn with {http['workers']} worker(s) for both servers on "
            f"the same {m['cpus']}-CPU machine as wrk. Body: the full CDS Hooks request with complete prefetch for "
            f"the {http['patient_resources']}-resource patient. Floor = `benchmarks/floor_app.py`: Starlette on the "
            'same uvicorn, `orjson.loads` of the body, fixed `{"cards": []}`.\n'
        )
        w(
            "| hook | body bytes | server | req/s | p50 ms | p90 ms | p99 ms | non-2xx/errors |\n"
            "|---|---:|---|---:|---:|---:|---:|---:|"
        )
        for r in http["runs"]:
            for name in ("service", "quiet_off", "floor"):
                if name not in r:
                    continue
                s = r[name]
                errors = s["errors_status"] + s["errors_connect"] + s["errors_read"] + s["errors_timeout"]
                label = {"quiet_off": "service, CDS_QUIET_CARDS=false"}.get(name, name)
                w(
                    f"| {r['hook']} | {r['body_bytes']} | {label} | {s['rps']:.0f} | {s['p50_ms']:.2f} | "
                    f"{s['p90_ms']:.2f} | {s['p99_ms']:.2f} | {errors} |"
                )
        w(
            "\n| hook | cards | throughput service/floor | quiet cards off / floor | p50 service/floor | "
            "p99 service/floor |\n|---|---|---:|---:|---:|---:|"
        )
        for r in http["runs"]:
            w(
                f"| {r['hook']} | {', '.join(r['cards'])} | **{r['throughput_ratio'] * 100:.1f}%** | "
                f"{_f(r.get('quiet_off_ratio') and r['quiet_off_ratio'] * 100, 1)}% | "
                f"{r['p50_ratio']:.1f}x | {r['p99_ratio']:.1f}x |"
            )
        w(
            f"\nwrk command (per run): `{http['runs'][0]['service']['command']}`, with `post.lua` setting "
            "method, `Content-Type` and the body (written by `benchmarks/http_load.py`).\n"
        )
        inproc = {(r["hook"], r["size"]): r["median_ms"] for r in (_get(results, "inprocess", "rows") or [])}
        for r in http["runs"]:
            per_request, floor_ms = 1e3 / r["service"]["rps"], 1e3 / r["floor"]["rps"]
            quiet_off = 1e3 / r["quiet_off"]["rps"] if "quiet_off" in r else None
            core = inproc.get((r["hook"], http["patient_resources"]))
            w(
                f"- {r['hook']}: one worker serves a request every {per_request:.2f} ms under load (floor "
                f"{floor_ms:.2f} ms; {_f(quiet_off)} ms with quiet cards off); `call_service` alone takes "
                f"{_f(core)} ms in-process. So the quiet-cards lookup and bookkeeping (a database read per "
                f"call, V2-30) cost about {_f(quiet_off and per_request - quiet_off)} ms of a request, and the "
                f"rest of the HTTP side (body, audit, Starlette, the issued-cards journal, the response) about "
                f"{_f(quiet_off and core and quiet_off - core - floor_ms)} ms above the floor."
            )
        w(
            "\n**Why the 50% target is missed.** Half the floor's throughput leaves about "
            f"{2e3 / http['runs'][0]['floor']['rps']:.2f} ms of one worker per request for everything; the rules "
            "alone (in-process, above) take several times that. On SQLite, the quiet-cards read of each call "
            "goes through aiosqlite's thread hand-offs (about 2 ms of CPU for one indexed SELECT on an empty "
            "table, measured alone), which costs more than the whole rule evaluation. Reaching the floor's "
            "half would need both a cheaper database read path on the click path (for example answering "
            "from a per-process cache of the patient keys that have any snooze or order-select card, kept "
            "in step across replicas) and a record and rule path several times cheaper than today's; neither "
            "is done here.\n"
        )
        peak = http.get("service_peak_rss_kib") or {}
        floor = http.get("floor_peak_rss_kib") or {}
        w(
            "Peak RSS after the load runs (VmHWM): service "
            + ", ".join(f"pid {pid}: {v['VmHWM'] / 1024:.1f} MiB" for pid, v in peak.items())
            + "; floor "
            + ", ".join(f"pid {pid}: {v['VmHWM'] / 1024:.1f} MiB" for pid, v in floor.items())
            + ".\n"
        )
    else:
        w(f"Not measured: {http.get('error')}\n")

    out.extend(auth_section(results.get("auth") or {}, _get(results, "before", "auth")))

    out.extend(workers_section(results.get("workers") or {}))

    out.extend(fallback_section(results.get("fallback") or {}))

    out.extend(cql_section(results.get("cql") or {}))

    w("## 6. Memory\n")
    mem = results.get("memory") or {}
    if mem.get("points"):
        w(
            f"One uvicorn worker (pid {mem['worker_pid']}), full-prefetch calls for the 100-resource patient "
            f"(patient-view and order-select alternating) over {mem['concurrency']} keep-alive connections; "
            "`/proc/<pid>/status` read after start, after a warm-up of "
            f"{mem['warmup']} requests, then after each step of {mem['step']} requests "
            f"({mem['failures']} failures, {mem['seconds']:.0f} s for the two steps).\n"
        )
        w("| after requests | VmRSS MiB | VmHWM (peak) MiB |\n|---:|---:|---:|")
        for p in mem["points"]:
            w(f"| {p['after_requests']} | {p['VmRSS'] / 1024:.1f} | {p['VmHWM'] / 1024:.1f} |")
        w(
            f"\nRSS growth from the first to the second {mem['step']}-request step: "
            f"**{mem['rss_growth_pct_first_to_second_step']:+.2f}%**; peak RSS per worker "
            f"**{mem['peak_rss_kib'] / 1024:.1f} MiB**.\n"
        )
    else:
        w(f"Not measured: {mem.get('error')}\n")

    w("## 7. Profile and cost breakdown\n")
    prof = results.get("profile") or {}
    if prof and "error" not in prof:
        w(
            "pyinstrument (0.2 ms sampling; profiling inflates absolute times, read the percentages). "
            "Self = time in the function itself; inclusive = time with its callees, `cds_service`, "
            "Starlette and logging frames only.\n"
        )
        for name, p in prof.items():
            w(f"### {name} ({p['calls']} calls)\n")
            w("| self % | function | | incl. % | function |\n|---:|---|---|---:|---|")
            for a, b in zip(p["top_self"][:10], [*p["top_inclusive"][:10], *[None] * 10], strict=False):
                w(
                    f"| {a['pct']:.1f} | `{a['function']}` | | "
                    + (f"{b['pct']:.1f} | `{b['function']}` |" if b else " | |")
                )
            w("")
    co = results.get("costs") or {}
    if co.get("rows"):
        w("### Cost of each step, timed alone (median µs per call, order-select body)\n")
        w("| step | 100 resources | 1000 resources |\n|---|---:|---:|")
        steps = list(dict.fromkeys(r["step"] for r in co["rows"]))
        by = {(r["size"], r["step"]): r["us"] for r in co["rows"]}
        for s in steps:
            w(f"| {s} | {_f(by.get((100, s)), 1)} | {_f(by.get((1000, s)), 1)} |")
        w("")
    out.extend(before_after(results))
    return "\n".join(out) + "\n"


def fallback_section(fb: dict) -> list[str]:
    """Section 4: the service's fallback at the defaults, at the old default (the server's page size), and a
    plain httpx fetch of the same URLs, timed in turns in one run (benchmarks/fallback.py)."""
    out = ["## 4. FHIR fallback (no prefetch, local HAPI FHIR R4)\n"]
    if not fb.get("rows"):
        return [*out, f"Skipped: {fb.get('skipped') or fb.get('error') or 'not run'}\n"]
    out.append(
        f"The 100-resource patient (ids prefixed `bench-`) was loaded into HAPI at `{fb['base']}` with one "
        f"transaction of {fb['loaded_resources']} PUTs ({fb['load_seconds']:.1f} s) and removed afterwards. "
        f"{fb['calls']} calls of each kind, taking turns: in-process `call_service` with no prefetch, its "
        "allowlisted `FhirFetcher` on the service's own outbound client (`config.outbound_client`: pinned, "
        "kept-alive connections; HTTP/2 where offered over TLS, so HTTP/1.1 to this plain-http HAPI), fetching "
        "every prefetch key at once and following `next` links, **at the default settings** (`_count=200`) and "
        "**at the server's page size** (`CDS_FHIR_PAGE_SIZE=0`, the default before #18; HAPI pages by 20); "
        "and a **plain httpx** fetch of the very URLs the service sent at the defaults (recorded from its "
        "client), following `next` links, over one keep-alive `httpx.AsyncClient` with `asyncio.gather` "
        "over the keys: the floor the target compares with. HAPI runs with the launcher's JVM flags "
        "(`-XX:TieredStopAtLevel=1`, in-memory H2).\n"
    )
    out.append(
        "| hook | fetch | requests per call | median ms | p95 ms | p99 ms |\n|---|---|---:|---:|---:|---:|"
    )
    label = {"defaults": "service, defaults", "server page size": "service, server's page size"}
    for r in fb["rows"]:
        for name, m in r["modes"].items():
            out.append(
                f"| {r['hook']} | {label.get(name, name)} | {m['requests_per_call']} | {m['median_ms']:.1f} | "
                f"{m['p95_ms']:.1f} | {m['p99_ms']:.1f} |"
            )
        p = r["full_prefetch"]
        out.append(
            f"| {r['hook']} | none (complete prefetch) | 0 | {p['median_ms']:.2f} | – | {p['p99_ms']:.2f} |"
        )
    out.append("")
    for r in fb["rows"]:
        out.append(
            f"- {r['hook']}: {r['fetched_keys']} keys, {r['record_resources']} resources "
            f"(plain fetch: {r['plain_resources']}); service at the defaults **{r['x_plain_median']:.2f}x** the "
            f"plain fetch (median; p95 {r['x_plain_p95']:.2f}x); **{r['before_after_median']:.1f}x faster** than "
            f"at the server's page size; same cards as with complete prefetch in every mode: "
            f"{r['same_cards_as_prefetch']}."
        )
    out.append(
        "\nWhat the service adds over the plain fetch is its checks (allowlist, bounded reads, FHIR version) and "
        "the hook evaluation itself. Connection reuse and HTTP/2 are checked by tests rather than timed here "
        "(HAPI is plain http): `tests/fhir/test_outbound_connections.py` counts the connections a server sees "
        "(none new after the first call; over TLS with HTTP/2, one for every key of every call).\n"
    )
    return out


def cql_section(cq: dict) -> list[str]:
    """Section 5: the hardware-removal decision in CQL on cql-execution, checked equivalent and timed in the
    same run as our in-process call (benchmarks/cql_peer.py)."""
    out = ["## 5. CQL baseline: the hardware-removal decision on cql-execution\n"]
    if not cq.get("ran"):
        return [*out, f"**Not run**: {cq.get('error') or 'skipped'}\n"]
    e, one = cq["engine"], cq["one_off"]
    out.append(
        "The same decision written in CQL by us (`benchmarks/cql/HardwareRemoval.cql`), translated to ELM JSON "
        f"by the reference translator from Maven Central ({cq['translator']}; `benchmarks/cql/pom.xml`) and run "
        f"by cql-execution {e['cql-execution']} over cql-exec-fhir {e['cql-exec-fhir']} (FHIR 4.0.1, with "
        f"FHIRHelpers 4.0.1) on Node {e['node']}, in one long-lived child process (`benchmarks/cql/harness.js`). "
        "Its terminology service serves the rule set's own ValueSet resources. Each patient's bundle is the "
        "request's prefetch; the library, code service, patient source and executor are built once, and only "
        "`executor.exec(patientSource, executionDateTime)` is timed, inside Node (`process.hrtime`). Ours: "
        "in-process `call_service` on the whole order-select request (envelope, record, every plan and its "
        "cards), timed as in section 2.\n"
    )
    checked = cq["checked"]
    verdict = "**equivalent**" if cq["equivalent"] else "**NOT equivalent**"
    out.append(
        f"Decision (the rule id of every hardware card shown, once per hardware draft in scope) compared on "
        f"{checked['fixture']} fixture calls with a hardware draft, all {checked['probe']} fixture patients "
        f"probed with a hardware-removal order-select, {checked['variant']} edge variants of p25 (condition "
        "and observation statuses, windows, partial dates, units, latest-value ties and offsets, a non-union "
        f"report, an infection, a red flag) and the {checked['grown']} grown patients: {verdict}."
    )
    for difference in cq["differences"]:
        out.append(f"- differs: {difference}")
    out.append(
        "\n| resources | ours median ms | ours p99 ms | CQL median ms | CQL p99 ms | × median | × p99 |\n"
        "|---:|---:|---:|---:|---:|---:|---:|"
    )
    for t in cq["timings"]:
        o, c = t["ours"], t["cql"]
        out.append(
            f"| {t['size']} | {o['median_ms']:.2f} | {o['p99_ms']:.2f} | {c['median_ms']:.1f} | "
            f"{c['p99_ms']:.1f} | **{t['x_median']:.0f}x** | {t['x_p99']:.0f}x |"
        )
    tr = one["translation"]
    built = ", ".join(f"{k}: {v:.2f} ms" for k, v in one["patient_source_build_ms"].items())
    first = ", ".join(f"{k}: {v:.0f} ms" for k, v in one["first_exec_ms"].items())
    out.append(
        "\nOne-off costs, not in the figures above: translation "
        f"{tr['translate_ms'] / 1000:.1f} s in the JVM ({tr['wall_s']:.0f} s with Maven"
        + ("; cached by content hash in this run" if tr["cached"] else "")
        + f"); Node start to ready {one['node_start_to_ready_ms']:.0f} ms, of which ELM library load "
        f"{one['library_load_ms']:.0f} ms and code service {one['code_service_ms']:.0f} ms; patient source "
        f"per patient ({built}); first, cold evaluation ({first}). Where the engine's time goes (a CPU profile "
        "taken while building this section, 1000 resources): about 60% in cql-exec-fhir wrapping every "
        "resource of a type as a FHIR object, and its codes as CQL codes, at each of the library's 30 "
        "retrieves, and about 30% in garbage collection.\n"
    )
    out.append("How faithful the CQL is, point by point:\n")
    out.append("| aspect | | how |\n|---|---|---|")
    for aspect, status, how in cq["fidelity"]:
        out.append(f"| {aspect} | {status} | {how} |")
    out.append("")
    return out


CHANGES = [  # what changed in issue #18, and which rows below show it
    (
        "Lazy, typed record",
        "one pass sorts the resources by type; a type's code index is built when a rule first reads it, "
        "an entry (shape check of the rest, dates) only for what a selection matches "
        "(`record/patient.py`); malformed data is refused then, at its origin",
        "in-process rows, `PatientRecord.build`, `evaluate`",
    ),
    (
        "Record names by code index",
        "cards name a record through an index of the titled value sets' codes built once per rule set "
        "(`plans/describe.RecordNames`), not by testing every value set per record",
        "`evaluate` (the checklists)",
    ),
    (
        "Nesting check on the bytes",
        "C-speed replaces on the request bytes instead of a walk of the decoded value (`web/bodies.py`)",
        "`nesting_within`, HTTP rows",
    ),
    (
        "Fallback defaults",
        "`_count=200` unless the template sets one (a 400 is retried without), HTTP/2 by ALPN, connections "
        "reused (`fhir/client.py`, `fhir/pinned.py`)",
        "section 4 (before = the server's page size, same run)",
    ),
]


def _ratio(before: float | None, after: float | None) -> str:
    return "n/a" if not before or not after else f"{before / after:.2f}x"


def before_after(results: dict) -> list[str]:
    """Each change of this issue, and the same measurement on the commit before it, from this run."""
    old = results.get("before") or {}
    out = ["## Before and after\n"]
    if not old or "error" in old:
        out.append(f"Not measured: {old.get('error', 'the before section was skipped')}.\n")
        return out
    out.append(
        f"'Before' is commit `{old['commit']}` (main before this issue), measured at the start of this run by "
        "its own suite from a git worktree (`benchmarks/before.py`), same machine, same patients.\n"
    )
    out.append("| change | what | shown in |\n|---|---|---|")
    out.extend(f"| {name} | {what} | {where} |" for name, what, where in CHANGES)
    out.append("\nIn-process `call_service`, median ms:\n")
    out.append("| hook | resources | before | after | speed-up |\n|---|---:|---:|---:|---:|")
    previous = {(r["hook"], r["size"]): r["median_ms"] for r in _get(old, "inprocess", "rows") or []}
    for r in _get(results, "inprocess", "rows") or []:
        was = previous.get((r["hook"], r["size"]))
        out.append(
            f"| {r['hook']} | {r['record_resources']} | {_f(was, 3)} | {r['median_ms']:.3f} | "
            f"{_ratio(was, r['median_ms'])} |"
        )
    out.append(
        "\nHTTP under load (100-resource patient, auth off, 1 worker), service req/s and share of the floor:\n"
    )
    out.append(
        "| hook | before req/s | after req/s | before share | after share |\n|---|---:|---:|---:|---:|"
    )
    previous_runs = {r["hook"]: r for r in _get(old, "http", "runs") or []}
    for r in _get(results, "http", "runs") or []:
        was = previous_runs.get(r["hook"])
        out.append(
            f"| {r['hook']} | {_f(was and was['service']['rps'], 0)} | {r['service']['rps']:.0f} | "
            f"{_f(was and was['throughput_ratio'] * 100, 1)}% | {r['throughput_ratio'] * 100:.1f}% |"
        )
    out.append(
        "\nStep costs (order-select body), median µs; a step the new path no longer has shows no after:\n"
    )
    out.append("| step | 100 before | 100 after | 1000 before | 1000 after |\n|---|---:|---:|---:|---:|")
    now = {(r["size"], r["step"]): r["us"] for r in _get(results, "costs", "rows") or []}
    was_steps = {(r["size"], r["step"]): r["us"] for r in _get(old, "costs", "rows") or []}
    steps = list(dict.fromkeys(step for _, step in [*was_steps, *now]))
    for step in steps:
        out.append(
            f"| `{step.strip()}` | {_f(was_steps.get((100, step)), 0)} | {_f(now.get((100, step)), 0)} | "
            f"{_f(was_steps.get((1000, step)), 0)} | {_f(now.get((1000, step)), 0)} |"
        )
    out.append("")
    return out


def _auth_ratio(results: dict) -> float | None:
    runs = [r for r in _get(results, "auth", "runs") or [] if r["store"] == "sqlite"]
    return min((r["throughput_ratio"] for r in runs), default=None)


def auth_target(results: dict) -> dict[str, Any]:
    """JWT on (ES384 + replay check on SQLite) against auth off, worst hook; PostgreSQL shown beside it."""
    ratio = _auth_ratio(results)
    pg = [r["throughput_ratio"] for r in _get(results, "auth", "runs") or [] if r["store"] == "postgresql"]
    shown = f"{ratio * 100:.1f}% (worst hook)" if ratio else ""
    if ratio and pg:
        shown += f"; PostgreSQL {min(pg) * 100:.1f}%"
    status = "n/a" if ratio is None else ("PASS" if ratio >= 0.7 else "FAIL")
    return {
        "name": "JWT on (ES384 + replay check on SQLite) >= 70% of the throughput with auth off",
        "value": ratio,
        "status": status,
        "measured": shown or f"not measured ({_get(results, 'auth', 'error') or 'see section 3b'})",
    }


# The authenticated path at commit 3673e85, before the group commit of the replay check and without the
# SQLite pre-ping: the same benchmark (benchmarks/auth_load.py, --quick) run on that tree and on this one
# back to back on this machine, so the ratios compare; absolute figures moved with the load of the machine.
# Means of two runs each (2026-12-02); CPU ms the JWT check adds per request = JWT minus auth off.
AUTH_BEFORE: dict[tuple[str, str], dict[str, float]] = {
    ("sqlite", "patient-view"): {"ratio": 0.745, "extra_ms": 5.76},
    ("sqlite", "order-select"): {"ratio": 0.687, "extra_ms": 7.21},
    ("postgresql", "patient-view"): {"ratio": 0.657, "extra_ms": 6.50},
    ("postgresql", "order-select"): {"ratio": 0.686, "extra_ms": 5.91},
}
# benchmarks/auth_costs.py on the same two trees: CPU µs per token of the replay check (means of two runs).
# 16 at once used to be the worst case: 16 transactions on 15 pooled connections, waiting on the writer lock.
REPLAY_CPU_US_BEFORE = {
    ("sqlite", "one_at_a_time"): 2736,
    ("sqlite", "16_at_once"): 5029,
    ("postgresql", "one_at_a_time"): 2011,
    ("postgresql", "16_at_once"): 4926,
}


def _auth_before(before: dict | None) -> tuple[dict[tuple[str, str], dict[str, float]], str]:
    """Per (store, hook): the earlier commit's JWT/off ratio and the CPU ms its JWT check added, from this
    run when it measured the earlier tree (auth_load.run_in), else the figures recorded below."""
    if not before or not before.get("runs"):
        return AUTH_BEFORE, "recorded on 2026-12-02, means of two runs of `auth_load.py --quick` on each tree"
    rows = {
        (r["store"], r["hook"]): {
            "ratio": r["throughput_ratio"],
            "extra_ms": r["jwt"]["cpu_ms_per_request"] - r["off"]["cpu_ms_per_request"],
        }
        for r in before["runs"]
    }
    return rows, "measured in this run"


def auth_section(auth: dict, before: dict | None = None) -> list[str]:
    """Section 3b: JWT on against off over HTTP on both stores, and what each part of the check costs."""
    out = ["## 3b. The authenticated path (CDS_AUTH=jwt)\n"]
    if not auth.get("runs"):
        return [*out, f"Not measured: {auth.get('error') or 'not run'}\n"]
    costs = auth.get("costs") or {}
    out.append(
        f"wrk as in section 3 ({auth['threads']} threads, {auth['connections']} connections, {auth['seconds']} s "
        "per run after a 2 s warm-up, one uvicorn worker), the same body, against the service with "
        "`CDS_AUTH=jwt` and against it with `CDS_AUTH=off`, on a fresh SQLite store and on PostgreSQL "
        "(`scripts/postgres.sh`, started and stopped by the benchmark; that test cluster runs with "
        "`fsync=off`, so its commits are cheaper than a durable server's). Every request carries its own "
        "ES384 token, signed before the run by `benchmarks/jwt_tokens.py` (unique `jti`, `aud` = "
        "`CDS_PUBLIC_BASE_URL` + path, `iss`/`kid` of the one trusted client and a `jku` on its allowlist); "
        "each wrk thread sends the next token of its own slice, so none is a replay, and the auth-off server "
        "gets the very same requests. The JWKS is served by a real loopback HTTP server and fetched by the "
        f"service through the allowlisted `jku` ({auth.get('jwks_fetches', 'n/a')} fetches in all: the cache "
        "holds it). Both servers log at INFO, so both write the audit line of every call. CPU ms per request "
        "is the worker's user+system time over the run divided by the answered requests: steadier than "
        "req/s when other work shares the machine.\n"
    )
    out.append(
        "| store | hook | auth off req/s | JWT req/s | **JWT / off** | p50 ms off / JWT | CPU ms/request off / JWT "
        "| JWT costs (CPU ms) | non-2xx | tokens used / signed | replay, no token |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    for r in auth["runs"]:
        off, on = r["off"], r["jwt"]
        extra = on["cpu_ms_per_request"] - off["cpu_ms_per_request"]
        out.append(
            f"| {r['store']} | {r['hook']} | {off['rps']:.0f} | {on['rps']:.0f} | **{r['throughput_ratio'] * 100:.1f}%** "
            f"| {off['p50_ms']:.1f} / {on['p50_ms']:.1f} | {off['cpu_ms_per_request']:.2f} / "
            f"{on['cpu_ms_per_request']:.2f} | {extra:+.2f} | {r['non_2xx']} | {on['tokens_used']} / "
            f"{r['tokens_signed']} | {r['checks']['replay_status']}, {r['checks']['no_token_status']} |"
        )
    noise = [
        r["jwt"]["cpu_ms_per_request"] - r["off"]["cpu_ms_per_request"]
        for r in auth["runs"]
        if r["jwt"]["cpu_ms_per_request"] < r["off"]["cpu_ms_per_request"]
    ]
    if noise:
        out.append(
            f"\nA negative cost ({min(noise):+.2f} ms) is the run-to-run spread of this shared machine, larger "
            "than what the check costs: read the step costs below for its size."
        )
    if auth.get("postgresql_skipped"):
        out.append(f"\nPostgreSQL: {auth['postgresql_skipped']}.")
    if costs:
        rc = costs.get("replay_check") or {}
        out.append(
            f"\nWhat each part costs, timed alone in-process (medians over {costs['rounds']} rounds of "
            f"{costs['calls_per_round']} calls; CPU is the whole process's, the database driver's threads "
            "included; `benchmarks/auth_costs.py`):\n"
        )
        out.append(
            "| step | wall µs per call | CPU µs per call | CPU µs before (3673e85) |\n|---|---:|---:|---:|"
        )
        out.append(
            f"| ES384 signature check (cryptography, P-384) | {costs['es384_verify_us']:.0f} | – | – |"
        )
        out.append(
            f"| RS384 signature check, for comparison (RSA-2048) | {costs['rs384_verify_us']:.0f} | – | – |"
        )
        v = costs["verify_without_replay_check"]
        out.append(
            f"| `JwtVerifier.verify`, JWKS cached, no replay check | {v['wall_us']:.0f} | {v['cpu_us']:.0f} "
            "| (unchanged) |"
        )
        for store, c in rc.items():
            for mode, label in (("one_at_a_time", "one call at a time"), ("16_at_once", "16 calls at once")):
                cpu_before = REPLAY_CPU_US_BEFORE.get((store, mode))
                out.append(
                    f"| replay check on {store}, {label} | {c[mode]['wall_us']:.0f} | {c[mode]['cpu_us']:.0f} "
                    f"| {cpu_before or '–'} |"
                )
    earlier, source = _auth_before(before)
    if earlier:
        out.append(
            "\nBefore (3673e85) → after: JWT / off throughput, and the CPU ms the JWT check adds per request "
            f"(before: {source}):\n"
        )
        out.append("| store | hook | before | after |\n|---|---|---:|---:|")
        for r in auth["runs"]:
            was = earlier.get((r["store"], r["hook"]))
            if was:
                extra = r["jwt"]["cpu_ms_per_request"] - r["off"]["cpu_ms_per_request"]
                out.append(
                    f"| {r['store']} | {r['hook']} | {was['ratio'] * 100:.0f}%, {was['extra_ms']:+.2f} ms "
                    f"| {r['throughput_ratio'] * 100:.0f}%, {extra:+.2f} ms |"
                )
    out.append(AUTH_NOTES)
    return out


AUTH_NOTES = """
**What the profile showed, and what was fixed.** Before, the replay check cost more than the signature:
each `first_use` was its own ORM session with a statement built anew, on a pooled connection pre-pinged
before use; through aiosqlite that is ten thread hops per token (the ping alone four), about 2.7 ms of CPU,
of which SQLite's own work (WAL, `synchronous=NORMAL`: no fsync per commit) is a small part. Under load it
was worse: concurrent requests each opened a transaction on its own pooled connection and queued for
SQLite's writer lock (about 5 ms of CPU per token at 16 at once; on PostgreSQL the same from the pool).
Fixed in `cds_service/store/`: the calls that arrive while a write is on its way are recorded together by
the next one (group commit: one multi-row `INSERT … ON CONFLICT DO UPDATE … RETURNING`, built once, in one
transaction; every caller is answered only after the commit), and SQLite connections are no longer
pre-pinged (`store/database.py`: a file cannot drop a connection; PostgreSQL keeps its ping). Still atomic
per `(iss, jti)` through the unique key, so a replay to another worker or replica is refused, and durable
before the answer: `tests/store/test_seen_tokens.py` races two stores, sends one token twice at once, and
kills the accepting process with SIGKILL before a second process refuses the token, on both stores.

**What remains** is about one millisecond per call for `JwtVerifier.verify` itself: the ES384 signature
check (P-384 has no fast path in OpenSSL; an RS384 client costs a twentieth of it) is most of it; PyJWT's
parsing around it, the unverified header and `iss` read that choose the key (≈130 µs) and the `PyJWK`
built per call (≈35 µs) are small and left as they are, as is the JWKS cache (no measurable cost). A
replay check on its own (no other call in flight) still costs 1.3-1.5 ms on either store: SQLAlchemy's
async layer (aiosqlite's thread hops; on PostgreSQL the pre-ping, BEGIN, INSERT and COMMIT round trips).
"""


def workers_section(wk: dict) -> list[str]:
    """Section 3c: two uvicorn workers against one (auth off), as a ratio."""
    out = ["## 3c. Two workers against one\n"]
    if not wk.get("runs"):
        return [*out, f"Not measured: {wk.get('error') or 'not run'}\n"]
    out.append(
        f"The service (auth off, as in section 3) with `--workers {wk['workers'][0]}` and with "
        f"`--workers {wk['workers'][1]}`, each on a fresh SQLite store migrated once before its workers start "
        f"(as `cds-service serve` does; with two workers metrics go through `PROMETHEUS_MULTIPROC_DIR`, as "
        f"there), the same wrk load ({wk['threads']} threads, {wk['connections']} connections, {wk['seconds']} s "
        "after a 2 s warm-up). CPU ms per request adds up every worker's CPU time.\n"
    )
    out.append(
        "| hook | 1 worker req/s | 2 workers req/s | **2 / 1** | p50 ms 1 / 2 | CPU ms/request 1 / 2 | non-2xx |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    for r in wk["runs"]:
        one, two = r["one"], r["two"]
        out.append(
            f"| {r['hook']} | {one['rps']:.0f} | {two['rps']:.0f} | **{r['throughput_ratio']:.2f}x** | "
            f"{one['p50_ms']:.1f} / {two['p50_ms']:.1f} | {one['cpu_ms_per_request']:.2f} / "
            f"{two['cpu_ms_per_request']:.2f} | {r['non_2xx']} |"
        )
    cpu = [r["two"]["cpu_ms_per_request"] / r["one"]["cpu_ms_per_request"] for r in wk["runs"]]
    out.append(
        f"\nThis machine has {wk['cpus']} logical CPUs and wrk runs on them too: with one worker, one core "
        "runs the service while wrk uses part of the other; a second worker can only take what wrk leaves of "
        "that second core, so the ratio here is a floor, not the scaling of a host with a core per worker. "
        f"CPU per request with two workers is {min(cpu):.2f}-{max(cpu):.2f}x that with one"
        + (
            ": what a request costs does not grow with a second worker beside it, so on a host with a core "
            "per worker the throughput scales with the workers until the shared store's writes (issued "
            "cards, replay checks) become the limit.\n"
            if max(cpu) <= 1.15
            else ": the workers get in each other's way (the cores are oversubscribed, and they share the "
            "store's writer lock), so more workers than free cores do not pay here.\n"
        )
    )
    return out
