"""One patient's record, indexed once per request so that every fact is a lookup, not a scan.

Data hygiene from the clinical specification (RULES.md section 0.1) lives here: entered-in-error records are
dropped at indexing, and each resource type has named status profiles ("active", "completed", ...) that the
rules select by.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from .fhirdates import first_instant, parse_date, parse_instant

_NEVER = datetime.min.replace(tzinfo=UTC)

DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "Condition": ("onsetDateTime", "onsetPeriod", "recordedDate"),
    "Procedure": ("performedDateTime", "performedPeriod"),
    "Observation": ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
    "MedicationRequest": ("authoredOn",),
    "MedicationStatement": ("effectiveDateTime", "effectivePeriod", "dateAsserted"),
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod", "issued"),
    "ServiceRequest": ("occurrenceDateTime", "occurrencePeriod", "authoredOn"),
    "AllergyIntolerance": ("onsetDateTime", "recordedDate"),
}

CODE_FIELDS: dict[str, tuple[str, ...]] = {
    "MedicationRequest": ("medicationCodeableConcept",),
    "MedicationStatement": ("medicationCodeableConcept",),
    "DiagnosticReport": ("conclusionCode", "code"),
}


def _coded(resource: dict[str, Any], key: str) -> str | None:
    concept = resource.get(key)
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return coding["code"]
    return None


@dataclass(slots=True, eq=False)
class Entry:
    """A resource with what the rules ask of it computed once: reference, date, codes and text."""

    resource: dict[str, Any]
    type: str
    reference: str
    instant: datetime | None
    date: date | None
    end: date | None
    codes: frozenset[tuple[str, str]]
    text: str
    label: str
    order: int = 0  # position in the record, so index lookups can return entries in record order

    @property
    def status(self) -> str | None:
        return self.resource.get("status")

    def recency(self) -> tuple[datetime, datetime]:
        """Sort key of "latest value wins": the effective instant, then `issued` (RULES.md section 0.1)."""
        issued = parse_instant(self.resource.get("issued")) or _NEVER
        return (self.instant or _NEVER, issued)


def _codings(resource: dict[str, Any], type_: str) -> tuple[frozenset[tuple[str, str]], list[str]]:
    concepts: list[Any] = []
    for key in CODE_FIELDS.get(type_, ("code",)):
        value = resource.get(key)
        concepts.extend(value if isinstance(value, list) else [value])
    codes = set()
    texts = []
    for concept in concepts:
        if not isinstance(concept, dict):
            continue
        if isinstance(concept.get("text"), str):
            texts.append(concept["text"])
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                codes.add((coding.get("system") or "", coding["code"]))
                if isinstance(coding.get("display"), str):
                    texts.append(coding["display"])
    return frozenset(codes), texts


def make_entry(resource: dict[str, Any]) -> Entry:
    type_ = resource["resourceType"]
    codes, texts = _codings(resource, type_)
    instant = first_instant(resource, DATE_FIELDS.get(type_, ()))
    period = resource.get("performedPeriod") or resource.get("effectivePeriod") or {}
    end = parse_date(period.get("end")) if isinstance(period, dict) else None
    return Entry(
        resource=resource,
        type=type_,
        reference=f"{type_}/{resource.get('id', '')}",
        instant=instant,
        date=instant.date() if instant is not None else None,
        end=end,
        codes=codes,
        text=" ".join(texts).lower(),
        label=texts[0] if texts else f"{type_}/{resource.get('id', '')}",
    )


def _entered_in_error(resource: dict[str, Any]) -> bool:
    return resource.get("status") == "entered-in-error" or _coded(resource, "verificationStatus") in {
        "entered-in-error"
    }


def _condition_usable(entry: Entry, t0: date) -> bool:
    return _coded(entry.resource, "verificationStatus") not in {"refuted", "entered-in-error"}


def _condition_active(entry: Entry, t0: date) -> bool:
    return _condition_usable(entry, t0) and _coded(entry.resource, "clinicalStatus") in {
        "active",
        "recurrence",
        "relapse",
    }


def _condition_confirmed(entry: Entry, t0: date) -> bool:
    return _condition_active(entry, t0) and _coded(entry.resource, "verificationStatus") == "confirmed"


def _statuses(*allowed: str) -> Callable[[Entry, date], bool]:
    allowed_set = frozenset(allowed)
    return lambda entry, t0: entry.status in allowed_set


def _medication_current(entry: Entry, t0: date) -> bool:
    if entry.status != "active":
        return False
    validity = (entry.resource.get("dispenseRequest") or {}).get("validityPeriod") or {}
    period_end = parse_date(validity.get("end")) or entry.end
    return period_end is None or period_end >= t0


def _allergy_active(entry: Entry, t0: date) -> bool:
    return _coded(entry.resource, "clinicalStatus") in {None, "active"} and _coded(
        entry.resource, "verificationStatus"
    ) not in {"refuted", "entered-in-error"}


StatusTest = Callable[[Entry, date], bool]

PROFILES: dict[str, dict[str, StatusTest]] = {
    "Condition": {
        "usable": _condition_usable,
        "active": _condition_active,
        "confirmed": _condition_confirmed,
    },
    "Procedure": {"completed": _statuses("completed")},
    "MedicationRequest": {
        "trial": _statuses("active", "completed", "stopped", "on-hold"),
        "current": _medication_current,
    },
    "MedicationStatement": {
        "trial": _statuses("active", "completed", "stopped", "on-hold"),
        "current": _medication_current,
    },
    "Observation": {"final": _statuses("final", "amended", "corrected")},
    "DiagnosticReport": {"final": _statuses("final", "amended", "corrected", "appended")},
    "ServiceRequest": {"recorded": _statuses("active", "completed")},
    "AllergyIntolerance": {"active": _allergy_active},
}

DEFAULT_PROFILE: dict[str, str] = {
    "Condition": "usable",
    "Procedure": "completed",
    "MedicationRequest": "trial",
    "MedicationStatement": "trial",
    "Observation": "final",
    "DiagnosticReport": "final",
    "ServiceRequest": "recorded",
    "AllergyIntolerance": "active",
}


def profile_test(resource_type: str, profile: str | None) -> StatusTest | None:
    """The status test for a type and profile name; None when the pair is unknown (a rule error)."""
    profiles = PROFILES.get(resource_type, {})
    name = profile or DEFAULT_PROFILE.get(resource_type)
    if name is None:
        return (lambda entry, t0: True) if profile is None else None
    return profiles.get(name)


@dataclass(slots=True)
class PatientRecord:
    """The patient's resources by type, with entered-in-error records already dropped."""

    patient: dict[str, Any] | None
    by_type: dict[str, list[Entry]] = field(default_factory=dict)
    by_code: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    dropped: int = 0
    _prefixes: dict[str, dict[str, list[Entry]]] = field(default_factory=dict)

    @classmethod
    def build(cls, resources: Iterable[dict[str, Any]]) -> PatientRecord:
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
            if _entered_in_error(resource):
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
                (id(e), e) for e in self._prefix_index(system).get(prefix, ()) if e.type == resource_type
            )
        return sorted(found.values(), key=lambda entry: entry.order)

    def _prefix_index(self, system: str) -> dict[str, list[Entry]]:
        """Every prefix of every code of `system` in the record, built on first use in a request."""
        index = self._prefixes.get(system)
        if index is None:
            index = defaultdict(list)
            for (code_system, code), entries in self.by_code.items():
                if code_system == system:
                    for end in range(1, len(code) + 1):
                        index[code[:end]].extend(entries)
            self._prefixes[system] = index
        return index


def resources_of(value: Any) -> list[dict[str, Any]]:
    """The resources inside a prefetch value: a Bundle's entries, or a single resource."""
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
