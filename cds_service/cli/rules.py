"""`cds-service validate` and `cds-service evaluate`: check a plan-definition folder, or run one hook
request in-process through exactly the path the HTTP service runs (`explain` shares that path)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..config import Settings, fetch_limits, outbound_client
from ..errors import InvalidRequest, ServiceError
from ..fhir import FhirFetcher
from ..hooks import Service, build_services, call_service
from ..plans.errors import RuleSetError
from ..plans.loader import load_ruleset
from ..plans.model import RuleSet
from ..plans.overlay import site_codes
from ..protocol.outcome import operation_outcome
from ..types import JSONObject
from .errors import REQUEST_FAILED, report_problems
from .loaded import rules_in_service

T = TypeVar("T")


def validate(args: argparse.Namespace, settings: Settings) -> int:
    directory = Path(args.directory) if args.directory else settings.plandefinitions_dir
    try:
        ruleset = load_ruleset(directory, settings.parameters_file, settings.site_dir)
    except RuleSetError as error:
        return report_problems(error)
    services = build_services(ruleset)
    print(
        f"ok: {len(ruleset.plans)} plan definitions, {len(ruleset.facts)} facts, "
        f"{len(ruleset.valuesets)} value sets; services: {', '.join(services)}"
    )
    if settings.site_dir is not None:
        added = ", ".join(f"{name} +{count}" for name, count in sorted(site_codes(ruleset.artifacts).items()))
        print(f"codes added by the site folder {settings.site_dir}: {added or 'none'}")
    return 0


def instant(text: str) -> datetime:
    """`--now`: T0 as an ISO date or dateTime; anything else is a usage error, not a traceback."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date or dateTime such as 2026-11-01, not {text!r}"
        ) from None


def service_for(body: Any, ruleset: RuleSet) -> Service:
    """The service of the request's hook; InvalidRequest naming the hooks offered."""
    services = build_services(ruleset)
    hook = body.get("hook") if isinstance(body, dict) else None
    service = next((s for s in services.values() if s.hook == hook), None)
    if service is None:
        offered = ", ".join(s.hook for s in services.values())
        raise InvalidRequest.single(
            f"no service for hook {hook!r} (offered: {offered})", "hook", "not-supported"
        )
    return service


@asynccontextmanager
async def fhir_fetcher(settings: Settings) -> AsyncIterator[FhirFetcher]:
    """The FHIR client the service fetches missing prefetch with: allowed servers only, no redirects."""
    async with outbound_client(settings) as client:
        yield FhirFetcher(
            client,
            settings.fhir_allowed_servers,
            fetch_limits(settings),
            require_https=not settings.fhir_allow_http,
        )


async def _evaluate(body: Any, settings: Settings, now: datetime) -> JSONObject:
    """The CDS response; ServiceError when the request is refused."""
    ruleset = rules_in_service(settings)
    service = service_for(body, ruleset)
    async with fhir_fetcher(settings) as fetcher:
        result = await call_service(service, ruleset, body, fetcher, now, settings.public_base_url)
    return result.response


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def run_request(
    args: argparse.Namespace,
    settings: Settings,
    respond: Callable[[Any, Settings, datetime], Coroutine[Any, Any, T]],
    show: Callable[[T], None],
) -> int:
    """Read REQUEST.json, answer it with `respond` and `show` the answer. A refused request is reported as
    the HTTP service answers it: each problem on stderr, the OperationOutcome on stdout, exit code 2."""
    try:
        body = orjson.loads(Path(args.request).read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        print(f"error: cannot read {args.request}: {error}", file=sys.stderr)
        return REQUEST_FAILED
    now = args.now or datetime.now(UTC)
    try:
        answer = asyncio.run(respond(body, settings, now))
    except RuleSetError as error:
        return report_problems(error)
    except ServiceError as error:
        for issue in error.issues:
            print(f"error: {issue.diagnostics}", file=sys.stderr)
        print_json(operation_outcome(error.issues))
        return REQUEST_FAILED
    show(answer)
    return 0


def evaluate(args: argparse.Namespace, settings: Settings) -> int:
    return run_request(args, settings, _evaluate, print_json)
