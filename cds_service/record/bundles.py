"""The resources inside a prefetch value or a FHIR search result."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..types import Resource


def indexed_resources(value: Any) -> Iterable[tuple[int | None, Resource]]:
    """A Bundle's entry resources with their index in `entry`, or (None, the value) when it is a single
    resource: the index is where a problem found later is reported."""
    if type(value) is not dict:
        return ()
    if value.get("resourceType") != "Bundle":
        return ((None, value),)
    entries = value.get("entry")
    if type(entries) is not list:
        return ()
    return (
        (index, entry["resource"])
        for index, entry in enumerate(entries)
        if type(entry) is dict and type(entry.get("resource")) is dict
    )


def resources_of(value: Any) -> list[Resource]:
    """A Bundle's entry resources, or the value itself when it is a single resource."""
    return [resource for _, resource in indexed_resources(value)]
