"""The benchmark suite in one command: `.venv/bin/python benchmarks/run.py [--quick]`.

Runs every section in one process and one run (so ratios compare like with like), writes the
machine-readable `benchmarks/results.json` and the report `docs/benchmarks.md`. Sections: "before" (the
same suite of an earlier commit, from a git worktree, for the before/after tables), logic evaluators,
in-process hook evaluation at 20/100/1000 resources, the CQL baseline (the hardware-removal decision on
cql-execution), HTTP load with wrk against the service and a floor endpoint (auth off, JWT on with SQLite
and PostgreSQL, 2 workers against 1), memory over 10k requests, pyinstrument profiles with a cost breakdown,
and FHIR fallback against a local HAPI server.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import auth_load  # noqa: E402
import before  # noqa: E402
import costs  # noqa: E402
import cql_peer  # noqa: E402
import fallback  # noqa: E402
import http_load  # noqa: E402
import inprocess  # noqa: E402
import logic_bench  # noqa: E402
import memory  # noqa: E402
import profile_hooks  # noqa: E402
import report  # noqa: E402
import workers_load  # noqa: E402
from patients import patients as build_patients  # noqa: E402


def section(results: dict, name: str, function, *args, **kwargs) -> None:
    started = time.perf_counter()
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    try:
        results[name] = function(*args, **kwargs)
    except Exception as error:  # a failing section is reported, the others still run
        traceback.print_exc()
        results[name] = {"error": f"{type(error).__name__}: {error}"}
    results.setdefault("seconds", {})[name] = time.perf_counter() - started
    print(f"[bench] {name} done in {results['seconds'][name]:.0f} s", file=sys.stderr, flush=True)


def logic(quick: bool) -> dict:
    if quick:
        logic_bench.REPEATS = 3
    return logic_bench.measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 3 minutes)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for service and floor")
    parser.add_argument("--skip", action="append", default=[], help="skip a section (e.g. fallback)")
    parser.add_argument(
        "--before", default=before.BASE, help=f"commit measured for 'before' (default {before.BASE})"
    )
    parser.add_argument("--no-report", action="store_true", help="only write benchmarks/results.json")
    parser.add_argument(
        "--report-only", action="store_true", help="re-render docs/benchmarks.md from benchmarks/results.json"
    )
    args = parser.parse_args(argv)
    if args.report_only:
        results = json.loads((BENCH / "results.json").read_text())
        results["targets"] = report.targets(results)
        (ROOT / "docs" / "benchmarks.md").write_text(report.render(results))
        return 0
    started = time.time()
    results: dict = {
        "quick": args.quick,
        "started": started,
        "command": "benchmarks/run.py" + (" --quick" if args.quick else ""),
    }
    results["machine"] = report.machine_info()
    patients = build_patients()
    hapi = fallback.Hapi()
    try:
        if "before" not in args.skip:  # the earlier commit's suite, first, on the same quiet machine
            section(results, "before", before.run, args.before, args.quick)
        if "logic" not in args.skip:
            section(results, "logic", logic, args.quick)
        if "inprocess" not in args.skip:
            section(results, "inprocess", inprocess.run, patients, args.quick)
        if "cql" not in args.skip:  # timed right after our in-process call, before the servers start
            section(results, "cql", cql_peer.run, patients, args.quick)
        if "http" not in args.skip:
            section(results, "http", http_load.run, patients[100], args.quick, args.workers)
        if "auth" not in args.skip:  # JWT on against off, SQLite and PostgreSQL (started and stopped here)
            section(results, "auth", auth_load.run, patients[100], args.quick)
        if "workers" not in args.skip:
            section(results, "workers", workers_load.run, patients[100], args.quick)
        if "memory" not in args.skip:
            section(results, "memory", memory.run, patients[100], args.quick)
        if "profile" not in args.skip:
            section(results, "profile", profile_hooks.run, patients, args.quick)
            section(results, "costs", costs.run, patients, args.quick)
        # HAPI's JVM starts only now, so its start-up does not steal CPU from the timed sections above
        if "fallback" not in args.skip:
            hapi.begin()
        if "fallback" not in args.skip:
            section(results, "fallback", fallback.run, hapi, patients[100], args.quick)
    finally:
        hapi.end()
    results["finished"] = time.time()
    results["targets"] = report.targets(results)
    (BENCH / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    if not args.no_report:
        (ROOT / "docs" / "benchmarks.md").write_text(report.render(results))
    for target in results["targets"]:
        print(f"{target['status']:<5} {target['name']}: {target['measured']}", file=sys.stderr)
    print(
        f"[bench] total {results['finished'] - started:.0f} s; wrote benchmarks/results.json"
        + ("" if args.no_report else " and docs/benchmarks.md"),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
