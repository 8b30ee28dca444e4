"""`cds-service load-fixtures` and `cds-service smoke`: put the synthetic patients on a FHIR server, and
check every hook against it without prefetch."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import httpx

from ..config import Settings
from .cases import CASES_DIR, load_cases
from .smoke import LoadError, Row, load, run_calls, table, wait_until_ready


def load_fixtures(args: argparse.Namespace, settings: Settings) -> int:
    if args.wait is not None and not args.wait >= 0:
        print("error: --wait needs a number of seconds, 0 or more", file=sys.stderr)
        return 2
    folder = Path(args.cases) if args.cases else CASES_DIR
    cases = load_cases(folder)
    if not cases:
        print(f"error: no synthetic cases (*.json) in {folder}; name it with --cases", file=sys.stderr)
        return 1

    async def run() -> int:
        if args.wait is not None:
            await wait_until_ready(args.fhir, args.wait)
        return await load(args.fhir, cases, remove=args.remove)

    try:
        count = asyncio.run(run())
    except (LoadError, httpx.HTTPError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    action = "removed" if args.remove else "loaded"
    print(f"{action} {count} resources of {len(cases)} synthetic patients on {args.fhir}")
    return 0


def smoke(args: argparse.Namespace, settings: Settings) -> int:
    cases = load_cases(Path(args.cases)) if args.cases else load_cases()

    async def run() -> list[Row]:
        await load(args.fhir, cases)
        try:
            return await run_calls(args.fhir, cases, settings)
        finally:
            if not args.keep:
                await load(args.fhir, cases, remove=True)

    try:
        rows = asyncio.run(run())
    except (LoadError, httpx.HTTPError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table(rows, print)
    return 0 if all(row.passed for row in rows) else 1
