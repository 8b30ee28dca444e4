"""FHIR date and dateTime values at day precision, which is all our windows (days since T0) need."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def parse_date(value: Any) -> date | None:
    """Parse `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a dateTime; partial dates take their first day."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            return date(int(value), 1, 1)
        if len(value) == 7:
            return date(int(value[:4]), int(value[5:7]), 1)
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def first_date(resource: dict[str, Any], fields: tuple[str, ...]) -> date | None:
    """The first parseable date among `fields`; `xPeriod` fields contribute their start (or end)."""
    for field in fields:
        value = resource.get(field)
        if isinstance(value, dict):
            parsed = parse_date(value.get("start")) or parse_date(value.get("end"))
        else:
            parsed = parse_date(value)
        if parsed is not None:
            return parsed
    return None
