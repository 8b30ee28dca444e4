"""One hook call end to end, independent of HTTP so the CLI's `evaluate` runs exactly the same path."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .fhir import FhirFetcher
from .patient_data import gather
from .plans.evaluate import evaluate
from .plans.model import RuleSet
from .protocol.request import ParsedRequest, parse_request
from .protocol.response import cds_response
from .record import Entry, PatientRecord, make_entry
from .services import Service


def drafts_in_scope(request: ParsedRequest) -> list[Entry]:
    """order-select looks only at the selected drafts; order-sign at all of them."""
    drafts = request.draft_orders
    selections = request.selections
    if selections is not None:
        chosen = set(selections)
        drafts = [d for d in drafts if f"{d['resourceType']}/{d.get('id')}" in chosen]
    return [make_entry(draft) for draft in drafts]


async def call_service(
    service: Service, ruleset: RuleSet, body: Any, fetcher: FhirFetcher | None, now: datetime
) -> tuple[dict[str, Any], list[str]]:
    """The CDS response for `body`, and the ids of plan definitions that failed during evaluation."""
    request = parse_request(body, service.hook)
    resources, _ = await gather(service.prefetch, request, fetcher)
    record = PatientRecord.build(resources)
    cards, failed = evaluate(
        ruleset, service.hook, record, drafts_in_scope(request), now.date(), request.context
    )
    return cds_response(cards), failed
