"""The CDS Hooks request envelope and the context of the three hooks we serve.

Unknown members are ignored (CDS Hooks 3.0 clients may send new ones); required members are checked
strictly so that a broken client gets a 400 naming the field, never a wrong card.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
UUID = re.compile(
    r"^(urn:uuid:)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

HOOKS = ("patient-view", "order-select", "order-sign")


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FhirAuthorization(Lenient):
    access_token: str = Field(min_length=1, repr=False)
    token_type: str
    expires_in: int = Field(ge=0)
    scope: str
    subject: str
    patient: str | None = None

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("token_type must be 'Bearer'")
        return value


class PatientViewContext(Lenient):
    userId: str
    patientId: str
    encounterId: str | None = None

    @field_validator("userId")
    @classmethod
    def _user_reference(cls, value: str) -> str:
        if not REFERENCE.match(value):
            raise ValueError("must be a relative reference such as 'Practitioner/123'")
        return value

    @field_validator("patientId", "encounterId")
    @classmethod
    def _fhir_id(cls, value: str | None) -> str | None:
        if value is not None and not FHIR_ID.match(value):
            raise ValueError("must be a FHIR id (letters, digits, '-' and '.', at most 64)")
        return value


class DraftOrders(Lenient):
    """A Bundle of unsigned orders; `type` is optional because the sandbox omits it."""

    resourceType: Literal["Bundle"]
    entry: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("entry")
    @classmethod
    def _entries_hold_resources(cls, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, entry in enumerate(entries):
            resource = entry.get("resource")
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                raise ValueError(f"entry[{index}].resource must be a FHIR resource")
        return entries

    def resources(self) -> list[dict[str, Any]]:
        return [entry["resource"] for entry in self.entry]


class OrderSignContext(PatientViewContext):
    draftOrders: DraftOrders


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(min_length=1)

    @field_validator("selections")
    @classmethod
    def _selections_reference_drafts(cls, selections: list[str], info: ValidationInfo) -> list[str]:
        draft_orders = info.data.get("draftOrders")
        drafts = (
            {f"{r['resourceType']}/{r.get('id')}" for r in draft_orders.resources()}
            if draft_orders
            else set()
        )
        for index, selection in enumerate(selections):
            if not REFERENCE.match(selection):
                raise ValueError(f"selections[{index}] must be a reference such as 'ServiceRequest/1'")
            if draft_orders is not None and selection not in drafts:
                raise ValueError(f"selections[{index}] '{selection}' is not an entry of draftOrders")
        return selections


CONTEXTS: dict[str, type[PatientViewContext]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
}


class HookRequest(Lenient):
    hook: str
    hookInstance: str
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @field_validator("hookInstance")
    @classmethod
    def _uuid(cls, value: str) -> str:
        if not UUID.match(value):
            raise ValueError("must be a UUID")
        return value

    @field_validator("fhirServer")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an absolute http(s) URL")
        return value

    @field_validator("fhirAuthorization")
    @classmethod
    def _authorization_needs_server(
        cls, value: FhirAuthorization | None, info: ValidationInfo
    ) -> FhirAuthorization | None:
        if value is not None and info.data.get("fhirServer") is None:
            raise ValueError("fhirServer is required when fhirAuthorization is present")
        return value


HookContext = PatientViewContext
"""The context of any of our hooks: order-sign and order-select contexts extend patient-view's."""
