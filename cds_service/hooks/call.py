"""One hook call end to end, independent of HTTP so the CLI's `evaluate` runs exactly the same path:
intake, patient data, record, evaluation, response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import TooLarge
from ..fhir import FhirFetcher
from ..plans.evaluate import evaluate
from ..plans.model import RuleSet
from ..protocol.response import cds_response
from ..record import Entry, PatientRecord
from ..types import JSONObject
from .intake import ParsedRequest, drafts_in_scope, parse_request
from .patient_data import gather, resource_count
from .quiet import CardQuieter
from .services import Service


@dataclass(frozen=True, slots=True)
class HookResult:
    """The CDS response, and what the audit log records about producing it (no patient data)."""

    response: JSONObject
    failed_plans: list[str]
    resources: int
    fetched_keys: int


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """A validated request with the patient's record and the draft orders in scope: what the plans read."""

    request: ParsedRequest
    record: PatientRecord
    drafts: list[Entry]
    fetched_keys: int


async def prepare_call(
    service: Service, body: Any, fetcher: FhirFetcher | None, max_resources: int | None = None
) -> PreparedCall:
    """Validate and gather the patient data, so `cds-service explain` reads exactly what a call reads."""
    request = parse_request(body, service.hook)
    values, fetched_keys = await gather(service.prefetch, request, fetcher)
    resources = sum(resource_count(value) for _, value in values)
    if max_resources is not None and resources + len(request.draft_orders) > max_resources:
        raise TooLarge.single(
            f"more than {max_resources} FHIR resources in one call", "prefetch", "too-costly"
        )
    return PreparedCall(request, PatientRecord.build(values), drafts_in_scope(request), fetched_keys)


async def call_service(
    service: Service,
    ruleset: RuleSet,
    body: Any,
    fetcher: FhirFetcher | None,
    now: datetime,
    source_base: str | None = None,
    max_resources: int | None = None,
    quiet: CardQuieter | None = None,
    caller: str = "",
) -> HookResult:
    """Validate, gather the patient data, evaluate the plan definitions of the service's hook. Cards link
    their source to `{source_base}/rules/{plan id}`, and what they miss to the capture app under it, when a
    base URL is known. With `quiet`, cards acknowledged before for this patient of `caller` (the EHR's issuer
    and tenant) are left out (V2-30)."""
    call = await prepare_call(service, body, fetcher, max_resources)
    context, hook = call.request.context, service.hook
    cards, failed = evaluate(ruleset, hook, call.record, call.drafts, now.date(), context, source_base)
    response = cds_response(cards)
    if quiet is not None:
        response["cards"] = await quiet.shown(
            response["cards"], call.request, call.drafts, caller, now, ruleset.params
        )
    return HookResult(response, failed, call.record.size(), call.fetched_keys)
