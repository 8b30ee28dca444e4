"""A resource with what the rules ask of it computed once: reference, dates, codes and text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..types import Resource
from .dates import first_instant, parse_date, parse_instant

_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)

DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "Condition": ("onsetDateTime", "onsetPeriod", "recordedDate"),
    "Procedure": ("performedDateTime", "performedPeriod"),
    "Observation": ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
    "MedicationRequest": ("authoredOn",),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod", "dateAsserted"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod", "issued"),
    "ServiceRequest": ("occurrenceDateTime", "occurrencePeriod", "authoredOn"),
    "AllergyIntolerance": ("onsetDateTime", "recordedDate"),
    "Encounter": ("period",),
}

CODE_FIELDS: dict[str, tuple[str, ...]] = {
    "MedicationRequest": ("medicationCodeableConcept",),
    "MedicationStatement": ("medicationCodeableConcept",),
    "DiagnosticReport": ("conclusionCode", "code"),
    "Encounter": ("type", "serviceType", "reasonCode"),  # a hospice or palliative-care stay (V2-11)
}


@dataclass(slots=True, eq=False)
class Entry:
    """One resource of the record; `day` is the calendar day of its effective date (None if undated), `end`
    the last day of its period (a prescription's validity end)."""

    resource: Resource
    type: str
    reference: str
    instant: dt.datetime | None
    day: dt.date | None
    end: dt.date | None
    codes: frozenset[tuple[str, str]]
    text: str
    label: str
    order: int = 0  # position in the record, so index lookups can return entries in record order

    @property
    def status(self) -> str | None:
        status = self.resource.get("status")
        return status if isinstance(status, str) else None

    def recency(self) -> tuple[dt.datetime, dt.datetime]:
        """Sort key of "latest value wins": the effective instant, then `issued` (RULES.md section 0.1)."""
        issued = parse_instant(self.resource.get("issued")) or _NEVER
        return (self.instant or _NEVER, issued)


def code_fields(resource_type: str) -> tuple[str, ...]:
    """The CodeableConcept elements that say what a resource of this type is."""
    return CODE_FIELDS.get(resource_type, ("code",))


def codings(resource: Resource, type_: str) -> tuple[frozenset[tuple[str, str]], list[str]]:
    """The (system, code) pairs and the texts (concept text, then coding displays) of what it is."""
    codes = set()
    texts = []
    for key in code_fields(type_):
        value = resource.get(key)
        for concept in value if type(value) is list else (value,):
            if type(concept) is not dict:
                continue
            text = concept.get("text")
            if type(text) is str:
                texts.append(text)
            for coding in concept.get("coding") or ():
                if type(coding) is dict:
                    code = coding.get("code")
                    if type(code) is str:
                        codes.add((coding.get("system") or "", code))
                        display = coding.get("display")
                        if type(display) is str:
                            texts.append(display)
    return frozenset(codes), texts


def named(resource: Resource, type_: str) -> tuple[frozenset[tuple[str, str]], str, str | None]:
    """What the rules match a resource by: its codes, its texts in lower case, and its first text (what a
    card calls it when no value set names it)."""
    codes, texts = codings(resource, type_)
    return codes, " ".join(texts).lower(), texts[0] if texts else None


def make_entry(
    resource: Resource,
    coded: tuple[frozenset[tuple[str, str]], str, str | None] | None = None,
    order: int = 0,
) -> Entry:
    """The entry of a resource; `coded` is its `named` when the record's code index already read it."""
    type_ = resource["resourceType"]
    codes, text, first_text = coded if coded is not None else named(resource, type_)
    instant = first_instant(resource, DATE_FIELDS.get(type_, ()))
    dispense = resource.get("dispenseRequest") if type_ == "MedicationRequest" else None
    validity = dispense.get("validityPeriod") if isinstance(dispense, dict) else None
    period = (
        resource.get("performedPeriod")
        or resource.get("effectivePeriod")
        or resource.get("period")
        or validity
        or {}
    )
    end = parse_date(period.get("end")) if isinstance(period, dict) else None
    reference = f"{type_}/{resource.get('id', '')}"
    return Entry(
        resource=resource,
        type=type_,
        reference=reference,
        instant=instant,
        day=instant.date() if instant is not None else None,
        end=end,
        codes=codes,
        text=text,
        label=first_text or reference,
        order=order,
    )
