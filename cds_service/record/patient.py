"""One patient's record, indexed once per request so that every fact is a lookup, not a scan."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..types import Resource
from .entry import Entry, make_entry
from .statuses import entered_in_error


@dataclass(slots=True)
class PatientRecord:
    """The patient's resources by type, with entered-in-error records already dropped."""

    patient: Resource | None
    by_type: dict[str, list[Entry]] = field(default_factory=dict)
    by_code: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    dropped: int = 0
    _prefixes: dict[tuple[str, int], dict[str, list[Entry]]] = field(default_factory=dict)

    @classmethod
    def build(cls, resources: Iterable[Any]) -> PatientRecord:
        seen: set[str] = set()
        by_type: dict[str, list[Entry]] = defaultdict(list)
        patient = None
        dropped = 0
        for resource in resources:
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                continue
            key = f"{resource['resourceType']}/{resource.get('id')}"
            if resource.get("id") is not None and key in seen:
                continue
            seen.add(key)
            if resource["resourceType"] == "Patient":
                patient = resource
                continue
            if entered_in_error(resource):
                dropped += 1
                continue
            entry = make_entry(resource)
            entry.order = len(seen)
            by_type[resource["resourceType"]].append(entry)
        by_code: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        for entries in by_type.values():
            for entry in entries:
                for coding in entry.codes:
                    by_code[coding].append(entry)
        return cls(patient=patient, by_type=dict(by_type), by_code=dict(by_code), dropped=dropped)

    def of_type(self, resource_type: str) -> list[Entry]:
        return self.by_type.get(resource_type, [])

    def by_reference(self, reference: str) -> Entry | None:
        """The entry a card's evidence names, to show its value and date rather than its id."""
        kind = reference.partition("/")[0]
        return next((entry for entry in self.of_type(kind) if entry.reference == reference), None)

    def size(self) -> int:
        return sum(len(entries) for entries in self.by_type.values())

    def candidates(
        self, resource_type: str, codes: frozenset[tuple[str, str]], prefixes: tuple[tuple[str, str], ...]
    ) -> list[Entry]:
        """Entries of a type that may carry one of `codes` or a code starting with one of `prefixes`: index
        lookups when they are fewer than the entries, so a fact costs the same in a record of any size."""
        entries = self.of_type(resource_type)
        if len(codes) + len(prefixes) >= len(entries):
            return entries
        found: dict[int, Entry] = {}
        for code in codes:
            found.update((id(e), e) for e in self.by_code.get(code, ()) if e.type == resource_type)
        for system, prefix in prefixes:
            found.update(
                (id(e), e)
                for e in self._prefix_index(system, len(prefix)).get(prefix, ())
                if e.type == resource_type
            )
        return sorted(found.values(), key=lambda entry: entry.order)

    def _prefix_index(self, system: str, length: int) -> dict[str, list[Entry]]:
        """The codes of `system` in the record by their first `length` characters, built on first use in a
        request: one key per code and prefix length the rules ask for, so a long code costs its length once
        (every prefix of every code would be quadratic in a code's length)."""
        index = self._prefixes.get((system, length))
        if index is None:
            index = defaultdict(list)
            for (code_system, code), entries in self.by_code.items():
                if code_system == system and len(code) >= length:
                    index[code[:length]].extend(entries)
            self._prefixes[(system, length)] = index
        return index
