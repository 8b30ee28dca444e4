"""The JSON shape of the FHIR elements the rules read, checked once when data arrives.

The service does not validate whole resources per request (too slow for the click path), but a `status`
that is a list or a `coding` that is a string must not quietly drop a plan's cards: such data is refused
with its location (sent by the client: 400; fetched from the FHIR server: 412).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .record import DATE_FIELDS

CONCEPTS = (
    "code",
    "medicationCodeableConcept",
    "clinicalStatus",
    "verificationStatus",
    "valueCodeableConcept",
)
CONCEPT_LISTS = ("conclusionCode",)
DATES = frozenset(field for fields in DATE_FIELDS.values() for field in fields) | {"issued", "authoredOn"}
STRINGS = ("id", "status", "valueString")


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _concept(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if type(value) is not dict:
        yield path, "must be a CodeableConcept object"
        return
    if "text" in value and type(value["text"]) is not str:
        yield f"{path}.text", "must be a string"
    codings = value.get("coding", [])
    if type(codings) is not list:
        yield f"{path}.coding", "must be an array"
        return
    for index, coding in enumerate(codings):
        if type(coding) is not dict:
            yield f"{path}.coding[{index}]", "must be an object"
        elif any(key in coding and type(coding[key]) is not str for key in ("system", "code", "display")):
            yield f"{path}.coding[{index}]", "system, code and display must be strings"


def _date(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if path.endswith("Period"):
        if type(value) is not dict or any(k in value and type(value[k]) is not str for k in ("start", "end")):
            yield path, "must be a Period with string start/end"
    elif type(value) is not str:
        yield path, "must be a date string"


def problems(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(path, problem) wherever `resource` has a JSON type its FHIR element does not allow, for the
    elements the rules read."""
    for key in STRINGS:
        if key in resource and type(resource[key]) is not str:
            yield key, "must be a string"
    for key in CONCEPTS:
        if key in resource:
            yield from _concept(resource[key], key)
    for key in CONCEPT_LISTS:
        if key in resource:
            if type(resource[key]) is not list:
                yield key, "must be an array"
            else:
                for index, concept in enumerate(resource[key]):
                    yield from _concept(concept, f"{key}[{index}]")
    for key in DATES.intersection(resource):
        yield from _date(resource[key], key)
    quantity = resource.get("valueQuantity")
    if quantity is not None and (
        type(quantity) is not dict
        or ("value" in quantity and not _number(quantity["value"]))
        or any(k in quantity and type(quantity[k]) is not str for k in ("unit", "code", "system"))
    ):
        yield "valueQuantity", "must be a Quantity with a numeric value"
    for key, allowed in (("valueBoolean", (bool,)), ("valueInteger", (int,)), ("valueDecimal", (int, float))):
        if key in resource and type(resource[key]) not in allowed:
            yield key, "has the wrong JSON type"
    dispense = resource.get("dispenseRequest")
    if dispense is not None:
        if type(dispense) is not dict:
            yield "dispenseRequest", "must be an object"
        elif "validityPeriod" in dispense:
            yield from _date(dispense["validityPeriod"], "dispenseRequest.validityPeriod")
