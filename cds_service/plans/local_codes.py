"""The service's own CodeSystem (V2-32), read once the same way by the loader, the site overlay, the
Questionnaire checks and the integrator's page: its concepts, nested ones included, and their properties."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from . import canonical


def all_concepts(concepts: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """A CodeSystem's concepts, nested ones included."""
    for concept in concepts:
        if isinstance(concept, dict):
            yield concept
            yield from all_concepts(concept.get("concept") or ())


def local_concepts(codesystems: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """code -> concept of the service's own CodeSystem among `codesystems`."""
    return {
        str(concept.get("code")): concept
        for system in codesystems
        if system.get("url") == canonical.LOCAL_CODES
        for concept in all_concepts(system.get("concept") or ())
    }


def concept_property(concept: dict[str, Any], code: str) -> str:
    """The value of a concept's property (`value-type`, `unit`, `parent`), or ""."""
    for item in concept.get("property") or ():
        if isinstance(item, dict) and item.get("code") == code:
            return str(next((value for key, value in item.items() if key.startswith("value")), ""))
    return ""
