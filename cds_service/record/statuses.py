"""Data hygiene from the clinical specification (RULES.md section 0.1): entered-in-error records are dropped,
and each resource type has named status profiles ("active", "completed", ...) that the rules select by."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..types import Resource
from .dates import parse_date
from .entry import Entry

StatusTest = Callable[[Entry, date], bool]


def _coded(resource: Resource, key: str) -> str | None:
    concept = resource.get(key)
    if not isinstance(concept, dict):
        return None
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            code: str = coding["code"]
            return code
    return None


def entered_in_error(resource: Resource) -> bool:
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


@dataclass(frozen=True, slots=True)
class StatusIn:
    """A profile that is a plain list of `status` codes, which a data requirement can state as a filter."""

    allowed: tuple[str, ...]

    def __call__(self, entry: Entry, t0: date) -> bool:
        return entry.status in self.allowed


def _statuses(*allowed: str) -> StatusIn:
    return StatusIn(allowed)


def _medication_current(entry: Entry, t0: date) -> bool:
    if entry.status != "active":
        return False
    validity: Any = (entry.resource.get("dispenseRequest") or {}).get("validityPeriod") or {}
    period_end = parse_date(validity.get("end")) or entry.end
    return period_end is None or period_end >= t0


def _allergy_active(entry: Entry, t0: date) -> bool:
    return _coded(entry.resource, "clinicalStatus") in {None, "active"} and _coded(
        entry.resource, "verificationStatus"
    ) not in {"refuted", "entered-in-error"}


def _any_status(entry: Entry, t0: date) -> bool:
    return True


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
    "Encounter": {"ongoing": _statuses("in-progress", "onleave")},
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
    "Encounter": "ongoing",
}


# What the profiles that are more than a status list count, in the words of the integrator's page.
PROFILE_WORDS: dict[tuple[str, str], str] = {
    ("Condition", "usable"): "any clinical status; not refuted or entered in error",
    ("Condition", "active"): "clinical status active, recurrence or relapse; not refuted",
    ("Condition", "confirmed"): "clinical status active, recurrence or relapse; verification confirmed",
    ("MedicationRequest", "current"): "status active, and its validity period (if any) not ended",
    ("MedicationStatement", "current"): "status active, and its effective period (if any) not ended",
    ("AllergyIntolerance", "active"): "clinical status active or absent; not refuted",
}


def profile_words(resource_type: str, profile: str | None) -> str:
    """What a status profile counts, in plain words: "status final, amended or corrected"."""
    name = profile or DEFAULT_PROFILE.get(resource_type, "")
    test = PROFILES.get(resource_type, {}).get(name)
    if isinstance(test, StatusIn):
        *most, last = test.allowed
        return "status " + (f"{', '.join(most)} or {last}" if most else last)
    return PROFILE_WORDS.get((resource_type, name), "any status")


def profile_test(resource_type: str, profile: str | None) -> StatusTest | None:
    """The status test for a type and profile name; None when the pair is unknown (a rule error)."""
    profiles = PROFILES.get(resource_type, {})
    name = profile or DEFAULT_PROFILE.get(resource_type)
    if name is None:
        return _any_status if profile is None else None
    return profiles.get(name)
