"""`cds-service`: serve the API, evaluate one hook request in-process, or validate plan definitions."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from sqlalchemy.exc import SQLAlchemyError

from .app import trusted_clients
from .config import Settings, fetch_limits
from .fhir import FhirFetcher
from .hooks import call_service
from .logs import configure_logging, logging_config
from .plans.loader import load_ruleset
from .plans.problems import RuleSetError
from .protocol.outcome import ClientError, operation_outcome
from .services import build_services
from .store import Database


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    host = args.host
    if args.dev:  # workers read their settings from the environment
        os.environ.update(CDS_AUTH="off", CDS_FHIR_ALLOW_HTTP="true")
        settings = Settings()
        host = "127.0.0.1"
    try:
        load_ruleset(settings.plandefinitions_dir, settings.parameters_file)
        trusted_clients(settings)
    except RuleSetError as error:
        return _report(error)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if status := _migrate(args, settings):  # once, before the workers start (each then finds it at head)
        return status
    _prepare_metrics_folder(args.workers)
    uvicorn.run(
        "cds_service.app:create_app",
        factory=True,
        host=host,
        port=args.port,
        workers=args.workers,
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,
    )
    return 0


def _prepare_metrics_folder(workers: int) -> None:
    """With several workers, each writes its metrics to files in one folder, which `/metrics` adds up (made
    here unless PROMETHEUS_MULTIPROC_DIR names one). The folder must start empty: values left by an earlier
    run would be counted again."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory is None:
        if workers == 1:
            return
        directory = tempfile.mkdtemp(prefix="cds-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


async def _upgrade(settings: Settings) -> str | None:
    database = Database(settings.database_url)
    try:
        await database.migrate()
        return await database.revision()
    finally:
        await database.close()


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        revision = asyncio.run(_upgrade(settings))
    except (ValueError, OSError, SQLAlchemyError) as error:
        print(f"error: cannot migrate the database: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"database schema at revision {revision}")
    return 0


def _report(error: RuleSetError) -> int:
    for problem in error.problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(error.problems)} problem(s) found", file=sys.stderr)
    return 1


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    directory = Path(args.directory) if args.directory else settings.plandefinitions_dir
    try:
        ruleset = load_ruleset(directory, settings.parameters_file)
    except RuleSetError as error:
        return _report(error)
    services = build_services(ruleset)
    print(
        f"ok: {len(ruleset.plans)} plan definitions, {len(ruleset.facts)} facts, "
        f"{len(ruleset.valuesets)} value sets; services: {', '.join(services)}"
    )
    return 0


async def _evaluate_async(body: object, settings: Settings, now: datetime) -> tuple[int, dict]:
    try:
        ruleset = load_ruleset(settings.plandefinitions_dir, settings.parameters_file)
    except RuleSetError as error:
        _report(error)
        return 1, {}
    services = build_services(ruleset)
    hook = body.get("hook") if isinstance(body, dict) else None
    service = next((s for s in services.values() if s.hook == hook), None)
    if service is None:
        return 2, operation_outcome([])
    limits = fetch_limits(settings)
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        fetcher = FhirFetcher(
            client, settings.fhir_allowed_servers, limits, require_https=not settings.fhir_allow_http
        )
        try:
            result = await call_service(service, ruleset, body, fetcher, now, settings.public_base_url)
        except ClientError as error:
            return 2, operation_outcome(error.issues)
    return 0, result.response


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = orjson.loads(Path(args.request).read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        print(f"error: cannot read {args.request}: {error}", file=sys.stderr)
        return 2
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    status, output = asyncio.run(_evaluate_async(body, settings, now))
    if status == 2 and not output.get("issue"):
        print(f"error: no service for hook {body.get('hook')!r}", file=sys.stderr)
    elif output:
        sys.stdout.write(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode() + "\n")
    return status


def _load_fixtures(args: argparse.Namespace, settings: Settings) -> int:
    from .cases import CASES_DIR, load_cases
    from .smoke import LoadError, load, wait_until_ready

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


def _smoke(args: argparse.Namespace, settings: Settings) -> int:
    from .cases import load_cases
    from .smoke import LoadError, load, run_calls, table

    cases = load_cases(Path(args.cases)) if args.cases else load_cases()

    async def run() -> list:
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


def _feedback_report(args: argparse.Namespace, settings: Settings) -> int:
    from .report import FORMATS, Period, ReportError, build_report, chart_path, write_chart

    try:
        period = Period.parse(args.since, args.until)
        chart = None if args.no_chart else chart_path(args.chart)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(build_report(settings.database_url, period, args.service))
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(FORMATS[args.format](report))
    if chart is not None:
        try:
            write_chart(report, chart)
        except OSError as error:
            print(f"error: cannot write the chart: {error}", file=sys.stderr)
            return 1
        print(f"chart: {chart}", file=sys.stderr)  # stderr: stdout stays one CSV or JSON document
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--dev",
        action="store_true",
        help="local development: no JWT verification, http FHIR allowed, 127.0.0.1",
    )
    serve.set_defaults(run=_serve)
    migrate = commands.add_parser(
        "migrate", help="upgrade the database schema (CDS_DATABASE_URL) to the newest revision"
    )
    migrate.set_defaults(run=_migrate)
    evaluate = commands.add_parser("evaluate", help="run one CDS Hooks request and print the response")
    evaluate.add_argument("request", help="a CDS Hooks request JSON file")
    evaluate.add_argument("--now", help="T0 as an ISO date or dateTime (default: now)")
    evaluate.set_defaults(run=_evaluate)
    validate = commands.add_parser("validate", help="check plan definitions; exit 1 on any problem")
    validate.add_argument(
        "directory", nargs="?", help="plan-definition folder (default: CDS_PLANDEFINITIONS_DIR)"
    )
    validate.set_defaults(run=_validate)
    fixtures = commands.add_parser("load-fixtures", help="put the synthetic patients on a FHIR server")
    fixtures.add_argument("--fhir", required=True, help="FHIR base URL, e.g. http://127.0.0.1:8080/fhir")
    fixtures.add_argument("--cases", help="folder of synthetic cases (default: fixtures/patients)")
    fixtures.add_argument("--remove", action="store_true", help="delete them again instead")
    fixtures.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="first poll GET <fhir>/metadata every 2 s until it answers 200; exit 1 if it has not by then",
    )
    fixtures.set_defaults(run=_load_fixtures)
    smoke = commands.add_parser(
        "smoke", help="load the synthetic patients and check every hook without prefetch"
    )
    smoke.add_argument("--fhir", required=True, help="FHIR base URL to test against")
    smoke.add_argument("--cases", help="folder of synthetic cases (default: fixtures/patients)")
    smoke.add_argument("--keep", action="store_true", help="leave the patients on the server afterwards")
    smoke.set_defaults(run=_smoke)
    report = commands.add_parser(
        "feedback-report",
        help="acceptance and override rates per rule, and the override reasons, with a chart",
        description="Read-only: cards are selected by when they were issued, with all their feedback; "
        "feedback on unknown cards ('unattributed') by its outcome timestamp. Days are UTC.",
    )
    report.add_argument("--since", metavar="YYYY-MM-DD", help="first day of the period (default: no limit)")
    report.add_argument("--until", metavar="YYYY-MM-DD", help="last day, inclusive (default: no limit)")
    report.add_argument("--service", metavar="ID", help="only this service's cards and feedback")
    report.add_argument("--format", choices=("text", "csv", "json"), default="text", help="stdout format")
    chart = report.add_mutually_exclusive_group()
    chart.add_argument(
        "--chart", default="feedback-report.svg", metavar="PATH", help=".png or .svg (default: %(default)s)"
    )
    chart.add_argument("--no-chart", action="store_true", help="write no chart")
    report.set_defaults(run=_feedback_report)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return args.run(args, settings)


if __name__ == "__main__":
    sys.exit(main())
