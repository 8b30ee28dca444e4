"""`cds-service validate` and `cds-service evaluate`: check a plan-definition folder, or run one hook
request in-process through exactly the path the HTTP service runs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from ..config import Settings, fetch_limits
from ..errors import InvalidRequest, ServiceError
from ..fhir import FhirFetcher
from ..hooks import build_services, call_service
from ..plans.errors import RuleSetError
from ..plans.loader import load_ruleset
from ..protocol.outcome import operation_outcome
from ..types import JSONObject
from .errors import REQUEST_FAILED, report_problems


def validate(args: argparse.Namespace, settings: Settings) -> int:
    directory = Path(args.directory) if args.directory else settings.plandefinitions_dir
    try:
        ruleset = load_ruleset(directory, settings.parameters_file)
    except RuleSetError as error:
        return report_problems(error)
    services = build_services(ruleset)
    print(
        f"ok: {len(ruleset.plans)} plan definitions, {len(ruleset.facts)} facts, "
        f"{len(ruleset.valuesets)} value sets; services: {', '.join(services)}"
    )
    return 0


async def _evaluate(body: Any, settings: Settings, now: datetime) -> JSONObject:
    """The CDS response; ServiceError when the request is refused."""
    ruleset = load_ruleset(settings.plandefinitions_dir, settings.parameters_file)
    services = build_services(ruleset)
    hook = body.get("hook") if isinstance(body, dict) else None
    service = next((s for s in services.values() if s.hook == hook), None)
    if service is None:
        offered = ", ".join(s.hook for s in services.values())
        raise InvalidRequest.single(
            f"no service for hook {hook!r} (offered: {offered})", "hook", "not-supported"
        )
    limits = fetch_limits(settings)
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
        fetcher = FhirFetcher(
            client, settings.fhir_allowed_servers, limits, require_https=not settings.fhir_allow_http
        )
        result = await call_service(service, ruleset, body, fetcher, now, settings.public_base_url)
    return result.response


def evaluate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = orjson.loads(Path(args.request).read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        print(f"error: cannot read {args.request}: {error}", file=sys.stderr)
        return REQUEST_FAILED
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    try:
        output = asyncio.run(_evaluate(body, settings, now))
        status = 0
    except RuleSetError as error:
        return report_problems(error)
    except ServiceError as error:
        for issue in error.issues:
            print(f"error: {issue.diagnostics}", file=sys.stderr)
        output, status = operation_outcome(error.issues), REQUEST_FAILED
    sys.stdout.write(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode() + "\n")
    return status
