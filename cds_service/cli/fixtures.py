"""`cds-service load-fixtures` and `cds-service smoke`: put the synthetic patients on a FHIR server (moved
to today, or to `--as-of`, so they show the cards they were written for, and saying which patient shows
which), and check every hook against it without prefetch."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from ..config import Settings
from ..plans.errors import RuleSetError
from .cases import CASES_DIR, load_cases
from .errors import report_problems
from .loaded import rules_in_service
from .preview import Shown, shown, table
from .rebase import NotFhir, rebase_case
from .smoke import LoadError, Row, load, run_calls, wait_until_ready
from .smoke import table as smoke_table


def day(text: str) -> date:
    """`--as-of`: an ISO date; anything else is a usage error, not a traceback."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date such as 2026-12-01, not {text!r}") from None


def load_fixtures(args: argparse.Namespace, settings: Settings) -> int:
    if args.wait is not None and not args.wait >= 0:
        print("error: --wait needs a number of seconds, 0 or more", file=sys.stderr)
        return 2
    folder = Path(args.cases) if args.cases else CASES_DIR
    cases = load_cases(folder)
    if not cases:
        print(f"error: no synthetic cases (*.json) in {folder}; name it with --cases", file=sys.stderr)
        return 1
    as_of = None if args.keep_dates or args.remove else args.as_of or datetime.now(UTC).date()
    try:
        ruleset = None
        if not args.remove:
            ruleset = rules_in_service(settings)
        if as_of is not None:
            cases = [rebase_case(case, as_of) for case in cases]
    except RuleSetError as error:
        return report_problems(error)
    except NotFhir as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    async def run() -> tuple[int, list[Shown]]:
        if args.wait is not None:
            await wait_until_ready(args.fhir, args.wait)
        count = await load(args.fhir, cases, remove=args.remove)
        return count, [] if ruleset is None else await shown(cases, ruleset, args.fhir)

    try:
        count, rows = asyncio.run(run())
    except (LoadError, httpx.HTTPError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.remove:
        print(f"removed {count} resources of {len(cases)} synthetic patients on {args.fhir}")
        return 0
    dated = f"dated for {as_of}" if as_of else "dates as written"
    print(f"loaded {count} resources of {len(cases)} synthetic patients on {args.fhir} ({dated})")
    day = str(as_of) if as_of else ", ".join(sorted({str(case.t0.date()) for case in cases}))
    table(rows, day, print)
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
    smoke_table(rows, print)
    return 0 if all(row.passed for row in rows) else 1
