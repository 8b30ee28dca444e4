"""Records as a clinician reads them on a card: what it is, its value and when — never a resource id (V2-26).

A record is named by the most specific titled value set it belongs to ("Formal physical therapy"), so the
names are the rule authors' words rather than long coding displays; medications keep their own name, which
is what a prescriber recognises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from ..record import Entry
from .terminology import ValueSet

NAME_MAX = 48
NAMED_BY_OWN_LABEL = frozenset({"MedicationRequest", "MedicationStatement", "AllergyIntolerance"})


def _shorten(text: str, limit: int = NAME_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _size(valueset: ValueSet) -> int:
    return len(valueset.include.codes) + len(valueset.include.prefixes) + len(valueset.text_terms)


class RecordNames:
    """The titled value sets that name records on cards, indexed once per rule set by their exact codes, so
    naming a record costs a lookup per code rather than a test against every value set."""

    def __init__(self, valuesets: Mapping[str, ValueSet]) -> None:
        titled = [vs for vs in valuesets.values() if vs.title]
        self._rank = {id(vs): (_size(vs), order) for order, vs in enumerate(titled)}  # smallest, then first
        self._by_code: dict[tuple[str, str], list[ValueSet]] = {}
        for vs in titled:
            for code in vs.include.codes:
                self._by_code.setdefault(code, []).append(vs)
        self._by_prefix = [vs for vs in titled if vs.include.prefixes]

    def title(self, codes: frozenset[tuple[str, str]]) -> str | None:
        """The title of the smallest value set that holds one of `codes` (by code only: a text-match term
        such as "lumbar" would name unrelated records)."""
        holders = {id(vs): vs for code in codes for vs in self._by_code.get(code, ())}
        holders.update((id(vs), vs) for vs in self._by_prefix if any(vs.include.matches(*c) for c in codes))
        found = [vs for vs in holders.values() if any(vs.contains(*code) for code in codes)]
        if not found:
            return None
        return min(found, key=lambda vs: self._rank[id(vs)]).title.removesuffix(" (%)")


def name_of(entry: Entry, names: RecordNames) -> str:
    """The title of the smallest value set that holds one of the record's codes, else its own label."""
    if entry.type not in NAMED_BY_OWN_LABEL:
        title = names.title(entry.codes)
        if title is not None:
            return title
    return _shorten(entry.label)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


def value_of(entry: Entry) -> str | None:
    """An Observation's value with its unit; free-text values are never shown."""
    resource = entry.resource
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        unit = quantity.get("unit") or quantity.get("code") or ""
        unit = "" if not isinstance(unit, str) or unit.startswith("{") or unit == "1" else unit
        return f"{_number(quantity['value'])} {unit}".strip()
    for key in ("valueInteger", "valueDecimal"):
        if isinstance(resource.get(key), int | float) and not isinstance(resource.get(key), bool):
            return _number(resource[key])
    if isinstance(resource.get("valueBoolean"), bool):
        return "yes" if resource["valueBoolean"] else "no"
    concept = resource.get("valueCodeableConcept")
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and isinstance(coding.get("display"), str):
                return str(coding["display"])
    return None


def _code(entry: Entry) -> str | None:
    key = "conclusionCode" if entry.type == "DiagnosticReport" else "code"  # the finding, not the test
    concept = entry.resource.get(key) or entry.resource.get("code")
    concepts = concept if isinstance(concept, list) else [concept]
    for item in concepts:
        for coding in (item or {}).get("coding") or () if isinstance(item, dict) else ():
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return str(coding["code"])
    return None


def _when(entry: Entry) -> str:
    if entry.day is None:
        return "undated"
    if entry.end is not None and entry.end != entry.day:
        return f"{entry.day.isoformat()} → {entry.end.isoformat()}"
    return entry.day.isoformat()


def describe_one(entry: Entry, names: RecordNames) -> str:
    """ "ODI 22 % on 2026-10-01", "T84.216A Breakdown of spinal fixation hardware, 2026-09-01"."""
    name = name_of(entry, names)
    when = _when(entry)
    if entry.type == "Observation":
        value = value_of(entry)
        return f"{name} {value} on {when}" if value is not None else f"{name} on {when}"
    if entry.type in {"Condition", "DiagnosticReport"}:
        code = _code(entry)
        return f"{code} {name}, {when}" if code else f"{name}, {when}"
    if entry.type in {"MedicationRequest", "MedicationStatement"}:
        return f"{name} from {when}"
    if entry.type == "ServiceRequest":
        return f"{name}: referral placed {when}"
    return f"{name} on {when}" if " → " not in when else f"{name}, {when}"


def dates_only(entries: list[Entry]) -> str | None:
    """When a met line's label already says what was done (procedures of one kind), only when it was:
    "8 times, 2026-05-02 → 2026-06-27" or "2026-03-26"."""
    if not entries or any(entry.type != "Procedure" for entry in entries):
        return None
    days = sorted(day for entry in entries for day in (entry.day, entry.end) if day is not None)
    if not days:
        return None
    span = days[0].isoformat() if days[0] == days[-1] else f"{days[0].isoformat()} → {days[-1].isoformat()}"
    return f"{len(entries)} times, {span}" if len(entries) > 1 else span


def describe(entries: Iterable[Entry], names: RecordNames, shown: int = 3) -> str:
    """Several records: a series of the same kind collapses to "PT 8 times, 2026-05-02 → 2026-06-27"."""
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in sorted(entries, key=lambda item: (item.day is None, item.day or date.min, item.order)):
        groups.setdefault((entry.type, name_of(entry, names)), []).append(entry)
    texts = []
    for (_, name), members in groups.items():
        if len(members) == 1:
            texts.append(describe_one(members[0], names))
            continue
        days = sorted(day for member in members for day in (member.day, member.end) if day is not None)
        span = f", {days[0].isoformat()} → {days[-1].isoformat()}" if days else ""
        texts.append(f"{name} {len(members)} times{span}")
    texts = list(dict.fromkeys(texts))  # a finding coded twice (problem list and report) reads once
    more = len(texts) - shown
    return "; ".join(texts[:shown]) + (f"; +{more} more" if more > 0 else "")
