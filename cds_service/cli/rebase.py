"""Move a synthetic patient in time: every FHIR date, dateTime and instant of its record shifted by the same
whole number of days, so that on another day it shows the cards it was written to show at its T0.

Which values are dates is read from the FHIR R4 element types (fhir.resources' R4B models), not guessed from
element names or from how a string looks: that reaches every choice type (`valueDateTime`,
`occurrenceDateTime`), periods, timings, annotations, extensions, contained resources and bundle entries
without a list to keep up, and leaves alone a code or an identifier that happens to read `1962`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from .cases import Case

DATE = "date"  # an element of type date, dateTime or instant
RESOURCE = "Resource"  # an element holding any resource: its own resourceType says which
_DATE_TYPES = re.compile(r"\b(?:Date|DateTime|Instant)\(\)")  # fhir.resources' primitive type markers
_MODEL_TYPE = re.compile(r"\b([A-Z]\w*)Type\b")  # and its complex types: `abc.PeriodType`


class NotFhir(ValueError):
    """A resource whose type FHIR R4 does not have: its dates cannot be found, so it is not moved."""


def days_until(t0: datetime, as_of: date) -> int:
    """The whole days from T0's (UTC) calendar date to `as_of`."""
    return (as_of - t0.date()).days


def rebase_case(case: Case, as_of: date) -> Case:
    """The case as it stands on `as_of`: T0 on that day at the same time, every date moved with it (the draft
    orders of its calls too). Raises NotFhir for a resource of no R4 type."""
    days = days_until(case.t0, as_of)
    if days == 0:
        return case
    return replace(
        case,
        t0=case.t0 + timedelta(days=days),
        resources=[shift_resource(resource, days) for resource in case.resources],
        calls=[{**call, "context": _shift_context(call["context"], days)} for call in case.calls],
    )


def shift_resource(resource: dict[str, Any], days: int) -> dict[str, Any]:
    """A copy of `resource` with each date, dateTime and instant moved by `days`; the rest as it was."""
    shifted: dict[str, Any] = _shift(resource, RESOURCE, days)
    return shifted


def shift_value(text: str, days: int) -> str:
    """`text` (a FHIR date, dateTime or instant) `days` later at the same precision: time of day and offset
    kept, a date stays a date, `YYYY-MM` and `YYYY` move from their first day. Unparseable: unchanged."""
    try:
        if len(text) >= 10:
            return (date.fromisoformat(text[:10]) + timedelta(days=days)).isoformat() + text[10:]
        if len(text) == 7:
            moved = date(int(text[:4]), int(text[5:7]), 1) + timedelta(days=days)
            return f"{moved.year:04d}-{moved.month:02d}"
        if len(text) == 4:
            return f"{(date(int(text), 1, 1) + timedelta(days=days)).year:04d}"
    except (ValueError, OverflowError):
        pass
    return text


def _shift_context(context: dict[str, Any], days: int) -> dict[str, Any]:
    return {
        key: shift_resource(value, days) if isinstance(value, dict) and "resourceType" in value else value
        for key, value in context.items()
    }


def _shift(value: Any, kind: str, days: int) -> Any:
    if isinstance(value, list):
        return [_shift(item, kind, days) for item in value]
    if kind == DATE:
        return shift_value(value, days) if isinstance(value, str) else value
    if not kind or not isinstance(value, dict):
        return value
    if kind == RESOURCE:
        kind = str(value.get("resourceType"))
    elements = _elements(kind)
    return {key: _shift(item, elements.get(key, ""), days) for key, item in value.items()}


@cache
def _elements(model: str) -> dict[str, str]:
    """Each JSON element of `model` that can hold a date: DATE, or the name of its own model."""
    try:
        fields = get_fhir_model_class(model).model_fields
    except (KeyError, ValueError):
        raise NotFhir(f"{model!r} is not a FHIR R4 resource or data type") from None
    kinds = {}
    for name, field in fields.items():
        annotation = str(field.annotation)
        found = _MODEL_TYPE.search(annotation)
        kind = DATE if _DATE_TYPES.search(annotation) else found.group(1) if found else ""
        if kind:
            kinds[field.alias or name] = kind
    return kinds
