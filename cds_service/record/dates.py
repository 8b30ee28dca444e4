"""FHIR date, dateTime and instant values.

Windows ("within 90 days of T0") work at day precision; ordering ("the latest value") needs the full
instant, compared across time-zone offsets. Partial dates take their first day; values without an offset
are read as UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any


def parse_instant(value: Any) -> datetime | None:
    """An aware datetime for `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a dateTime/instant; None if unparseable."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 10:  # the common YYYY-MM-DD, without the general parser
            return datetime.combine(date.fromisoformat(value), time.min, UTC)
        if len(value) == 4:
            return datetime(int(value), 1, 1, tzinfo=UTC)
        if len(value) == 7:
            return datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_date(value: Any) -> date | None:
    """The calendar date as written (the local date of a dateTime, not converted to UTC)."""
    moment = parse_instant(value)
    return moment.date() if moment is not None else None


def first_instant(resource: dict[str, Any], fields: tuple[str, ...]) -> datetime | None:
    """The first parseable value among `fields`; `xPeriod` fields contribute their start (or end)."""
    for field in fields:
        value = resource.get(field)
        if isinstance(value, dict):
            parsed = parse_instant(value.get("start")) or parse_instant(value.get("end"))
        else:
            parsed = parse_instant(value)
        if parsed is not None:
            return parsed
    return None
