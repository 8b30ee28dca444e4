"""The resources inside a prefetch value or a FHIR search result."""

from __future__ import annotations

from typing import Any

from ..types import Resource


def resources_of(value: Any) -> list[Resource]:
    """A Bundle's entry resources, or the value itself when it is a single resource."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        entries = value.get("entry")
        return [
            entry["resource"]
            for entry in (entries if isinstance(entries, list) else ())
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        ]
    return [value]
