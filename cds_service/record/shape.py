"""The JSON shape of the FHIR elements the rules read, checked when a rule first reads them.

The service does not validate whole resources per request (too slow for the click path), but a `status`
that is a list or a `coding` that is a string must not quietly drop a plan's cards: such data is refused
with its location (sent by the client: 400; fetched from the FHIR server: 412). The record checks what
says what a resource is when it first indexes that resource type, and the rest of a resource when a rule
selects it, so data no rule reads costs nothing; only the elements a resource actually has are looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

from ..types import Resource
from .bundles import resources_of
from .entry import DATE_FIELDS

TypeErrors = list[tuple[str, str]]


def _string(value: Any, path: str) -> TypeErrors:
    return [] if type(value) is str else [(path, "must be a string")]


def _concept(value: Any, path: str) -> TypeErrors:
    if type(value) is not dict:
        return [(path, "must be a CodeableConcept object")]
    found: TypeErrors = []
    if "text" in value and type(value["text"]) is not str:
        found.append((f"{path}.text", "must be a string"))
    codings = value.get("coding", ())
    if type(codings) not in (list, tuple):
        return [*found, (f"{path}.coding", "must be an array")]
    for index, coding in enumerate(codings):
        if type(coding) is not dict:
            found.append((f"{path}.coding[{index}]", "must be an object"))
        elif any(key in coding and type(coding[key]) is not str for key in ("system", "code", "display")):
            found.append((f"{path}.coding[{index}]", "system, code and display must be strings"))
    return found


def _concepts(value: Any, path: str) -> TypeErrors:
    if type(value) is not list:
        return [(path, "must be an array")]
    return [
        problem for index, concept in enumerate(value) for problem in _concept(concept, f"{path}[{index}]")
    ]


def _date(value: Any, path: str) -> TypeErrors:
    return [] if type(value) is str else [(path, "must be a date string")]


def _period(value: Any, path: str) -> TypeErrors:
    if type(value) is dict and all(type(value[k]) is str for k in ("start", "end") if k in value):
        return []
    return [(path, "must be a Period with string start/end")]


def _quantity(value: Any, path: str) -> TypeErrors:
    if (
        type(value) is dict
        and ("value" not in value or type(value["value"]) in (int, float))
        and all(type(value[k]) is str for k in ("unit", "code", "system") if k in value)
    ):
        return []
    return [(path, "must be a Quantity with a numeric value")]


def _typed(*allowed: type) -> Callable[[Any, str], TypeErrors]:
    return lambda value, path: [] if type(value) in allowed else [(path, "has the wrong JSON type")]


def _dispense(value: Any, path: str) -> TypeErrors:
    if type(value) is not dict:
        return [(path, "must be an object")]
    validity = value.get("validityPeriod")
    return [] if validity is None else _period(validity, f"{path}.validityPeriod")


CHECKS: dict[str, Callable[[Any, str], TypeErrors]] = {
    **{key: _string for key in ("id", "status", "valueString")},
    **{
        key: _concept
        for key in (
            "code",
            "medicationCodeableConcept",
            "clinicalStatus",
            "verificationStatus",
            "valueCodeableConcept",
        )
    },
    "conclusionCode": _concepts,
    **{
        field: _period if field.lower().endswith("period") else _date
        for fields in DATE_FIELDS.values()
        for field in fields
    },
    "issued": _date,
    "authoredOn": _date,
    "valueQuantity": _quantity,
    "valueBoolean": _typed(bool),
    "valueInteger": _typed(int),
    "valueDecimal": _typed(int, float),
    "dispenseRequest": _dispense,
}


def type_errors(resource: Resource, skip: Collection[str] = ()) -> TypeErrors:
    """(path, problem) wherever `resource` has a JSON type its FHIR element does not allow, for the
    elements the rules read, except those in `skip` (already checked)."""
    found: TypeErrors = []
    for key, value in resource.items():
        check = CHECKS.get(key)
        if check is not None and key not in skip:
            found.extend(check(value, key))
    return found


# What says what a resource is (entry.CODE_FIELDS), by type: read of every resource the record indexes.
CODE_CHECKS: dict[str, dict[str, Callable[[Any, str], TypeErrors]]] = {
    "MedicationRequest": {"medicationCodeableConcept": _concept},
    "MedicationStatement": {"medicationCodeableConcept": _concept},
    "DiagnosticReport": {"conclusionCode": _concepts, "code": _concept},
    "Encounter": {"type": _concepts, "serviceType": _concept, "reasonCode": _concepts},
}
_CODE = {"code": _concept}


def code_checked(resource_type: str) -> Collection[str]:
    """The elements `code_errors` checks for a type, which the rest of the check can skip."""
    return CODE_CHECKS.get(resource_type, _CODE).keys()


def code_errors(resource: Resource, resource_type: str) -> TypeErrors:
    """The same for only what says what the resource is: all the record's code index reads of it."""
    found: TypeErrors = []
    for key, check in CODE_CHECKS.get(resource_type, _CODE).items():
        if key in resource:
            found.extend(check(resource[key], key))
    return found


def located_type_errors(value: Resource, where: str) -> Iterator[tuple[str, str]]:
    """(location, problem) for a resource or each resource of a Bundle, located under `where`."""
    if value.get("resourceType") != "Bundle":
        for path, problem in type_errors(value):
            yield f"{where}.{path}", problem
        return
    if not isinstance(value.get("entry", []), list):
        yield f"{where}.entry", "must be an array"
        return
    for index, resource in enumerate(resources_of(value)):
        for path, problem in type_errors(resource):
            yield f"{where}.entry[{index}].resource.{path}", problem
