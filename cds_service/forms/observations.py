"""SDC observation-based extraction: one Observation per answer of an item marked `observationExtract`, filled
from the QuestionnaireResponse as the SDC extraction page says (status final, code from item.code, subject,
encounter, effective and issued from `authored`, performer from `author`, derivedFrom the response)."""

from __future__ import annotations

import re
from typing import Any

from .answers import AnswerError, item_unit, quantity

PERFORMERS = frozenset(
    {"Practitioner", "PractitionerRole", "Organization", "CareTeam", "Patient", "RelatedPerson"}
)
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def observation(
    item: dict[str, Any],
    value: tuple[str, Any],
    response: dict[str, Any],
    when: str,
    derived_from: str,
    categories: list[dict[str, Any]],
    components: list[dict[str, Any]],
) -> dict[str, Any]:
    """The Observation an answer becomes; `when` is the response's `authored` (or the extraction time)."""
    resource: dict[str, Any] = {"resourceType": "Observation"}
    for element in ("basedOn", "partOf"):
        references = [r for r in response.get(element) or () if _allowed(element, r)]
        if references:
            resource[element] = references
    resource["status"] = "final"
    if categories:
        resource["category"] = categories
    resource["code"] = {"coding": codings(item)}
    resource["subject"] = response["subject"]
    if isinstance(response.get("encounter"), dict):
        resource["encounter"] = response["encounter"]
    resource["effectiveDateTime"] = when
    if INSTANT.fullmatch(when):
        resource["issued"] = when
    author = response.get("author")
    if isinstance(author, dict) and reference_type(author) in PERFORMERS:
        resource["performer"] = [author]
    resource.update(observation_value(item, *value))
    resource["derivedFrom"] = [{"reference": derived_from}]
    if components:
        resource["component"] = components
    return resource


def component(item: dict[str, Any], value: tuple[str, Any]) -> dict[str, Any]:
    """An Observation.component for an item marked as a component of its parent's Observation."""
    key, given = value
    if key == "valueDecimal":  # a component has no valueDecimal: a unitless quantity carries the number
        return {"code": {"coding": codings(item)}, "valueQuantity": {"value": given}}
    return {"code": {"coding": codings(item)}, **observation_value(item, key, given)}


def codings(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {key: coding[key] for key in ("system", "code", "display") if key in coding}
        for coding in item.get("code") or ()
        if isinstance(coding, dict)
    ]


def observation_value(item: dict[str, Any], key: str, given: Any) -> dict[str, Any]:
    """Observation.value[x] for an answer: a number asked in a unit becomes a Quantity (SDC), a code a
    CodeableConcept, a date a dateTime."""
    unit = item_unit(item)
    if key in {"valueDecimal", "valueInteger"} and unit is not None:
        return {"valueQuantity": quantity(given, unit)}
    if key == "valueCoding":
        concept: dict[str, Any] = {"coding": [given]}
        if isinstance(given.get("display"), str):
            concept["text"] = given["display"]
        return {"valueCodeableConcept": concept}
    if key in {"valueDate", "valueDateTime"}:
        return {"valueDateTime": given}
    if key == "valueUri":
        return {"valueString": given}
    if key in {"valueReference", "valueAttachment"}:
        raise AnswerError(f"{key} cannot be an Observation value")
    return {key: given}


def reference_type(reference: dict[str, Any]) -> str:
    """The resource type a Reference points at, from its relative `reference` or its `type`."""
    return str(reference.get("reference") or "").partition("/")[0] or str(reference.get("type") or "")


def _allowed(element: str, reference: Any) -> bool:
    """QuestionnaireResponse.basedOn (CarePlan, ServiceRequest) fits Observation.basedOn; of its partOf
    (Observation, Procedure), Observation.partOf takes a Procedure."""
    if not isinstance(reference, dict):
        return False
    return element == "basedOn" or reference_type(reference) == "Procedure"
