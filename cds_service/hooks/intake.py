"""The first step of a hook call: the request envelope, the hook's context and the draft orders, validated.

A request that breaks the CDS Hooks rules, or a draft order whose elements the rules read have the wrong JSON
type, is refused here with every problem located, before any data is fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import InvalidRequest, Issue
from ..protocol.outcome import issues_from_validation
from ..protocol.request import CONTEXTS, HookContext, HookRequest
from ..record import Entry, located_type_errors, make_entry
from ..types import Resource


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A validated request: the envelope plus the hook's typed context."""

    envelope: HookRequest
    context: HookContext

    @property
    def draft_orders(self) -> list[Resource]:
        drafts = getattr(self.context, "draftOrders", None)
        return drafts.resources() if drafts is not None else []

    @property
    def selections(self) -> list[str] | None:
        selections: list[str] | None = getattr(self.context, "selections", None)
        return selections


# Draft types of earlier FHIR versions, and what R4 calls them: an EHR speaking DSTU2 or STU3 would otherwise
# get a silent empty answer, as if its orders had been reviewed.
OLDER_FHIR = {
    "MedicationOrder": ("DSTU2", "MedicationRequest"),
    "DiagnosticOrder": ("DSTU2", "ServiceRequest"),
    "ProcedureRequest": ("STU3", "ServiceRequest"),
    "ReferralRequest": ("STU3", "ServiceRequest"),
}


def _older_fhir(entries: list[Any]) -> Iterator[Issue]:
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind in OLDER_FHIR:
            version, current = OLDER_FHIR[kind]
            yield Issue(
                f"'{kind}' is a FHIR {version} resource; this service speaks FHIR R4 (send a {current})",
                f"context.draftOrders.entry[{index}].resource.resourceType",
            )


def parse_request(body: Any, expected_hook: str) -> ParsedRequest:
    """Validate a decoded JSON body for a service bound to `expected_hook`; InvalidRequest names each
    problem."""
    if not isinstance(body, dict):
        raise InvalidRequest.single("The request body must be a JSON object", "$")
    try:
        envelope = HookRequest.model_validate(body)
    except ValidationError as error:
        raise InvalidRequest(issues_from_validation(error)) from None
    if envelope.hook != expected_hook:
        raise InvalidRequest.single(
            f"hook '{envelope.hook}' does not match this service's hook '{expected_hook}'", "hook"
        )
    try:
        context = CONTEXTS[expected_hook].model_validate(envelope.context)
    except ValidationError as error:
        raise InvalidRequest(issues_from_validation(error, prefix="context")) from None
    request = ParsedRequest(envelope, context)
    drafts = getattr(context, "draftOrders", None)
    if drafts is not None:
        bundle = {"resourceType": "Bundle", "entry": drafts.entry}
        malformed = [*_older_fhir(drafts.entry)] + [
            Issue(f"{problem} (FHIR R4)", location)
            for location, problem in located_type_errors(bundle, "context.draftOrders")
        ]
        if malformed:
            raise InvalidRequest(malformed)
    return request


def drafts_in_scope(request: ParsedRequest) -> list[Entry]:
    """order-select looks only at the selected drafts; order-sign at all of them."""
    drafts = request.draft_orders
    selections = request.selections
    if selections is not None:
        chosen = set(selections)
        drafts = [d for d in drafts if f"{d['resourceType']}/{d.get('id')}" in chosen]
    return [make_entry(draft) for draft in drafts]
