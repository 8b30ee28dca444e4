"""One hook call end to end, independent of HTTP so the CLI's `evaluate` runs exactly the same path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .fhir import FhirFetcher
from .patient_data import gather
from .plans.evaluate import evaluate
from .plans.model import RuleSet
from .protocol.outcome import ClientError, Issue
from .protocol.request import ParsedRequest, parse_request
from .protocol.response import cds_response
from .record import Entry, PatientRecord, make_entry
from .services import Service
from .shape import problems


def drafts_in_scope(request: ParsedRequest) -> list[Entry]:
    """order-select looks only at the selected drafts; order-sign at all of them."""
    drafts = request.draft_orders
    selections = request.selections
    if selections is not None:
        chosen = set(selections)
        drafts = [d for d in drafts if f"{d['resourceType']}/{d.get('id')}" in chosen]
    return [make_entry(draft) for draft in drafts]


@dataclass(frozen=True, slots=True)
class HookResult:
    """The CDS response, and what the audit log records about producing it (no patient data)."""

    response: dict[str, Any]
    failed_plans: list[str]
    resources: int
    fetched_keys: int


async def call_service(
    service: Service,
    ruleset: RuleSet,
    body: Any,
    fetcher: FhirFetcher | None,
    now: datetime,
    source_base: str | None = None,
    max_resources: int | None = None,
) -> HookResult:
    """Validate, gather the patient data, evaluate the plan definitions of the service's hook. Cards link
    their source to `{source_base}/rules/{plan id}` when a base URL is known."""
    request = parse_request(body, service.hook)
    malformed = [
        Issue(f"{problem} (FHIR R4)", f"context.draftOrders.entry[{index}].resource.{path}")
        for index, draft in enumerate(request.draft_orders)
        for path, problem in problems(draft)
    ]
    if malformed:
        raise ClientError(400, malformed)
    resources, fetched_keys = await gather(service.prefetch, request, fetcher)
    if max_resources is not None and len(resources) + len(request.draft_orders) > max_resources:
        raise ClientError.single(
            413, f"more than {max_resources} FHIR resources in one call", "prefetch", "too-costly"
        )
    record = PatientRecord.build(resources)
    drafts = drafts_in_scope(request)
    cards, failed = evaluate(ruleset, service.hook, record, drafts, now.date(), request.context, source_base)
    return HookResult(cds_response(cards), failed, record.size(), fetched_keys)
