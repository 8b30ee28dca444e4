"""One patient's record for one call, indexed as the rules read it, so a call pays only for what they read.

Building the record is one pass that sorts the resources by type. The first rule that reads a type gets that
type's code index (what each resource is, its shape checked); a rule's selection then builds entries (dates
parsed, the rest of the shape checked, entered-in-error dropped) only for the resources it matches. Malformed
data is refused when it is first read, at its origin (`Origin`), and never read unchecked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..types import Resource
from .bundles import indexed_resources
from .entry import Entry, make_entry, named
from .origin import UNNAMED, Origin
from .shape import code_checked, code_errors, type_errors
from .statuses import entered_in_error

Codes = frozenset[tuple[str, str]]


@dataclass(slots=True, eq=False)
class Coded:
    """A resource as the record's code index holds it: where it came from, its position (record order) and
    what it is (`codes`, and `text` in lower case), before any rule looks at it closely."""

    resource: Resource
    origin: Origin
    index: int | None  # in its Bundle's entry list; None when the prefetch value is the resource
    order: int
    codes: Codes = frozenset()
    text: str = ""
    label: str | None = None  # its first text: how a card calls it when no value set names it
    entry: Entry | None = None  # built when a rule first selects it
    read: bool = False  # looked at closely: `entry` stays None when it was entered in error


@dataclass(slots=True)
class _TypeIndex:
    coded: list[Coded]
    by_code: dict[tuple[str, str], list[Coded]]
    prefixes: dict[tuple[str, int], dict[str, list[Coded]]] = field(default_factory=dict)


class PatientRecord:
    """The patient's resources by type; entries are built for what the rules select, on first use."""

    __slots__ = ("_by_reference", "_by_type", "_indexes", "_size")

    def __init__(self, by_type: dict[str, list[Coded]], size: int) -> None:
        self._by_type = by_type
        self._size = size
        self._indexes: dict[str, _TypeIndex] = {}
        self._by_reference: dict[str, Entry] = {}

    @classmethod
    def build(cls, values: Iterable[tuple[Origin, Any]]) -> PatientRecord:
        """The record of prefetch values (a Bundle or one resource each); a resource seen twice (same type
        and id) counts once, the first wins; the Patient (which no rule reads) and non-resources are left
        out."""
        seen: set[tuple[str, str]] = set()
        by_type: dict[str, list[Coded]] = defaultdict(list)
        size = 0
        for origin, value in values:
            for index, resource in indexed_resources(value):
                type_ = resource.get("resourceType")
                if type(type_) is not str:
                    continue
                identity = resource.get("id")
                if identity is not None:
                    if type(identity) is not str:  # read now, to tell duplicates apart
                        raise origin.malformed(index, [("id", "must be a string")])
                    if (type_, identity) in seen:
                        continue
                    seen.add((type_, identity))
                if type_ == "Patient":
                    continue
                size += 1
                by_type[type_].append(Coded(resource, origin, index, size))
        return cls(dict(by_type), size)

    @classmethod
    def of_resources(cls, resources: Iterable[Any]) -> PatientRecord:
        """The record of resources handed over directly (by tools and tests), as if one Bundle."""
        bundle = {"resourceType": "Bundle", "entry": [{"resource": resource} for resource in resources]}
        return cls.build([(UNNAMED, bundle)])

    def size(self) -> int:
        """Resources received (the Patient and duplicates not counted)."""
        return self._size

    def of_type(self, resource_type: str) -> list[Entry]:
        """Every usable entry of a type, in record order."""
        return self.entries(self.coded(resource_type))

    def coded(
        self, resource_type: str, codes: Codes | None = None, prefixes: tuple[tuple[str, str], ...] = ()
    ) -> list[Coded]:
        """The resources of a type as the code index holds them: all, or, given `codes` and code `prefixes`
        (by system), only those carrying one when they are fewer, so that selecting by a value set costs
        the same in a record of any size."""
        index = self._index(resource_type)
        if codes is None or len(codes) + len(prefixes) >= len(index.coded):
            return index.coded
        found: dict[int, Coded] = {}
        for code in codes:
            found.update((c.order, c) for c in index.by_code.get(code, ()))
        for system, prefix in prefixes:
            found.update((c.order, c) for c in _prefix_index(index, system, len(prefix)).get(prefix, ()))
        return [found[order] for order in sorted(found)]

    def entries(self, coded: Iterable[Coded]) -> list[Entry]:
        """The entries of these resources, each built (the rest of its shape checked, dates parsed) the first
        time; entered-in-error resources have none."""
        entries = []
        for item in coded:
            if not item.read:
                item.entry = self._entry(item)
                item.read = True
            if item.entry is not None:
                entries.append(item.entry)
        return entries

    def by_reference(self, reference: str) -> Entry | None:
        """The entry a card's evidence names, to show its value and date rather than its id."""
        return self._by_reference.get(reference)

    def _index(self, resource_type: str) -> _TypeIndex:
        index = self._indexes.get(resource_type)
        if index is None:
            coded = self._by_type.get(resource_type, [])
            by_code: dict[tuple[str, str], list[Coded]] = defaultdict(list)
            for item in coded:
                problems = code_errors(item.resource, resource_type)
                if problems:
                    raise item.origin.malformed(item.index, problems)
                item.codes, item.text, item.label = named(item.resource, resource_type)
                for code in item.codes:
                    by_code[code].append(item)
            index = self._indexes[resource_type] = _TypeIndex(coded, dict(by_code))
        return index

    def _entry(self, item: Coded) -> Entry | None:
        resource = item.resource
        type_ = resource["resourceType"]
        problems = type_errors(resource, skip=code_checked(type_))
        if problems:
            raise item.origin.malformed(item.index, problems)
        if entered_in_error(resource):
            return None
        entry = make_entry(resource, (item.codes, item.text, item.label), item.order)
        self._by_reference.setdefault(entry.reference, entry)
        return entry


def _prefix_index(index: _TypeIndex, system: str, length: int) -> dict[str, list[Coded]]:
    """The type's codes of `system` by their first `length` characters, built on first use in a request:
    one key per code and prefix length the rules ask for, so a long code costs its length once (every
    prefix of every code would be quadratic in a code's length)."""
    found = index.prefixes.get((system, length))
    if found is None:
        found = defaultdict(list)
        for (code_system, code), holders in index.by_code.items():
            if code_system == system and len(code) >= length:
                found[code[:length]].extend(holders)
        index.prefixes[(system, length)] = found
    return found
