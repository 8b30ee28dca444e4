"""`cds-service`: serve the API, migrate its database, evaluate or explain one hook request in-process,
validate plan definitions or show one rule, load the synthetic patients onto a FHIR server, smoke-test one,
or report on feedback."""

from __future__ import annotations

import argparse

from ..config import Settings
from ..ops.logs import configure_logging
from .contract import data
from .explain import explain
from .feedback_report import DEFAULT_CHART, feedback_report
from .fixtures import day, load_fixtures, smoke
from .package import package
from .rules import evaluate, instant, validate
from .serve import migrate, serve
from .show import show


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    command = commands.add_parser("serve", help="run the HTTP service")
    command.add_argument("--host", default="0.0.0.0")
    command.add_argument("--port", type=int, default=8000)
    command.add_argument("--workers", type=int, default=1)
    command.add_argument(
        "--dev",
        action="store_true",
        help="local development: no JWT verification, http FHIR allowed, 127.0.0.1",
    )
    command.set_defaults(run=serve)

    command = commands.add_parser(
        "migrate", help="upgrade the database schema (CDS_DATABASE_URL) to the newest revision"
    )
    command.set_defaults(run=migrate)

    command = commands.add_parser("evaluate", help="run one CDS Hooks request and print the response")
    command.add_argument("request", help="a CDS Hooks request JSON file")
    command.add_argument("--now", type=instant, help="T0 as an ISO date or dateTime (default: now)")
    command.set_defaults(run=evaluate)

    command = commands.add_parser(
        "explain",
        help="run one CDS Hooks request and say, criterion by criterion, why it gives its cards",
    )
    command.add_argument("request", help="a CDS Hooks request JSON file")
    command.add_argument("--now", type=instant, help="T0 as an ISO date or dateTime (default: now)")
    command.add_argument("--json", action="store_true", help="print the explanation as JSON")
    command.set_defaults(run=explain)

    command = commands.add_parser("rules", help="read the loaded rules")
    rules = command.add_subparsers(dest="rules_command", required=True)
    command = rules.add_parser(
        "show", help="a fact or plan definition: its JSON-Logic, where it is written, what it uses"
    )
    command.add_argument("name", help="a fact name, or a PlanDefinition id or name")
    command.set_defaults(run=show)
    command = rules.add_parser(
        "data", help="what the rules read, per hook, as Markdown (the text of docs/integration.md)"
    )
    command.set_defaults(run=data)

    command = commands.add_parser("validate", help="check plan definitions; exit 1 on any problem")
    command.add_argument(
        "directory", nargs="?", help="plan-definition folder (default: CDS_PLANDEFINITIONS_DIR)"
    )
    command.set_defaults(run=validate)

    command = commands.add_parser(
        "package", help="write the rules as a FHIR NPM package (.tgz) for FHIR servers and tooling"
    )
    command.add_argument(
        "--out", metavar="PATH", help="the .tgz, or a folder for it (default: dist/<name>-<version>.tgz)"
    )
    command.add_argument(
        "--bundle", metavar="PATH", help="also write the resources as a FHIR transaction Bundle (JSON)"
    )
    command.set_defaults(run=package)

    command = commands.add_parser("load-fixtures", help="put the synthetic patients on a FHIR server")
    command.add_argument("--fhir", required=True, help="FHIR base URL, e.g. http://127.0.0.1:8080/fhir")
    command.add_argument("--cases", help="folder of synthetic cases (default: the bundled ones)")
    command.add_argument("--remove", action="store_true", help="delete them again instead")
    command.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="first poll GET <fhir>/metadata every 2 s until it answers 200; exit 1 if it has not by then",
    )
    dates = command.add_mutually_exclusive_group()
    dates.add_argument(
        "--as-of",
        type=day,
        metavar="YYYY-MM-DD",
        help="move every date so the patients show on this day the cards they were written for "
        "(default: today, UTC)",
    )
    dates.add_argument("--keep-dates", action="store_true", help="load the dates as written (T0 2026-11-01)")
    command.set_defaults(run=load_fixtures)

    command = commands.add_parser(
        "smoke", help="load the synthetic patients and check every hook without prefetch"
    )
    command.add_argument("--fhir", required=True, help="FHIR base URL to test against")
    command.add_argument("--cases", help="folder of synthetic cases (default: the bundled ones)")
    command.add_argument("--keep", action="store_true", help="leave the patients on the server afterwards")
    command.set_defaults(run=smoke)

    command = commands.add_parser(
        "feedback-report",
        help="acceptance and override rates per rule, and the override reasons, with a chart",
        description="Read-only: cards are selected by when they were issued, with all their feedback; "
        "feedback on unknown cards ('unattributed') by its outcome timestamp. Days are UTC.",
    )
    command.add_argument("--since", metavar="YYYY-MM-DD", help="first day of the period (default: no limit)")
    command.add_argument("--until", metavar="YYYY-MM-DD", help="last day, inclusive (default: no limit)")
    command.add_argument("--service", metavar="ID", help="only this service's cards and feedback")
    command.add_argument("--format", choices=("text", "csv", "json"), default="text", help="stdout format")
    chart = command.add_mutually_exclusive_group()
    chart.add_argument(
        "--chart",
        metavar="PATH",
        help=f".png or .svg (default: {DEFAULT_CHART} in the working folder, if it is writable; needs the "
        "[report] extra)",
    )
    chart.add_argument("--no-chart", action="store_true", help="write no chart")
    command.set_defaults(run=feedback_report)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    status: int = args.run(args, settings)
    return status
