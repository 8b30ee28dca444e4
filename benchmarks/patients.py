"""Synthetic patients of about 20, 100 and 1000 resources for the benchmarks.

Each is a real case from fixtures/patients (p25: hardware removal criteria met, 18 resources besides the
Patient) grown with extra, realistic history that the prefetch templates return: earlier physical-therapy
episodes (before the index fusion), older pain scores and body temperatures, a never-smoker status repeated
at earlier visits, resolved unrelated conditions, and completed prescriptions for unrelated medicines. All
extra resources carry unique ids and are dated so that they do not change the decision: the benchmark
checks that every size gets the same cards as the original case.

The size is the number of resources the service sees for the patient-view hook (everything its prefetch
returns; the Patient itself is not prefetched).
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:  # tests/support builds prefetch the way the test suite does
    sys.path.insert(0, str(ROOT / "tests"))

BASE_CASE = "p25-hw-met-select-vs-sign"
CASE_FILE = ROOT / "fixtures" / "patients" / f"{BASE_CASE}.json"
SIZES = (20, 100, 1000)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

PT_CODES = [
    ("97110", "Therapeutic exercises"),
    ("97140", "Manual therapy techniques"),
    ("97112", "Neuromuscular reeducation"),
    ("97530", "Therapeutic activities"),
]
OLD_CONDITIONS = [
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes mellitus"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("K21.9", "Gastro-esophageal reflux disease"),
    ("J06.9", "Acute upper respiratory infection, unspecified"),
    ("S93.401A", "Sprain of ankle"),
    ("N39.0", "Urinary tract infection, site not specified"),
    ("E78.5", "Hyperlipidemia"),
]
OLD_MEDICINES = [
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("861007", "metformin 500 MG Oral Tablet"),
    ("617312", "atorvastatin 20 MG Oral Tablet"),
    ("198211", "omeprazole 20 MG Oral Capsule"),
    ("308182", "amoxicillin 500 MG Oral Capsule"),
    ("745679", "albuterol 90 MCG Inhaler"),
]
HISTORY_START = date(2008, 1, 1)
HISTORY_END = date(2025, 5, 31)  # before the index fusion (2025-06-19)
OBSERVATION_END = date(2026, 3, 31)  # before the latest pain score and smoking status of the case


@dataclass(frozen=True, slots=True)
class Patient:
    size: int
    case: dict[str, Any]  # the fixture case with its bundle grown to `size` prefetched resources

    @property
    def id(self) -> str:
        return self.case["id"]

    @property
    def resources(self) -> list[dict[str, Any]]:
        return [entry["resource"] for entry in self.case["bundle"]["entry"]]

    def call(self, name: str) -> dict[str, Any]:
        """One of the case's own calls by name; "patient-view" is the chart-open call (the case has none)."""
        if name == "patient-view":
            return {"name": name, "hook": "patient-view", "context": {}, "expected": []}
        return next(call for call in self.case["calls"] if call["name"] == name)


def _spread(index: int, count: int, start: date, end: date) -> date:
    span = (end - start).days
    return start + timedelta(days=(index * span) // max(count, 1))


def _extra(patient_id: str, index: int, count: int) -> dict[str, Any]:
    """The index-th extra resource (ids `{patient}-bench-{index}`), cycling through realistic kinds."""
    subject = {"reference": f"Patient/{patient_id}"}
    rid = f"{patient_id}-bench-{index}"
    kind = index % 10
    if kind in (0, 1, 2):  # a PT session of an earlier back-pain episode
        code, display = PT_CODES[index % len(PT_CODES)]
        return {
            "resourceType": "Procedure",
            "id": rid,
            "status": "completed",
            "code": {"coding": [{"system": CPT, "code": code, "display": display}], "text": display},
            "performedDateTime": _spread(index, count, HISTORY_START, HISTORY_END).isoformat(),
            "subject": subject,
        }
    if kind in (3, 4, 5):  # a vital sign or score taken at an earlier visit
        when = _spread(index, count, HISTORY_START, OBSERVATION_END).isoformat()
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "effectiveDateTime": when,
            "subject": subject,
        }
        if kind == 3:
            observation["code"] = {
                "coding": [
                    {
                        "system": LOINC,
                        "code": "72514-3",
                        "display": "Pain severity - 0-10 verbal numeric rating",
                    }
                ]
            }
            observation["valueInteger"] = 3 + index % 5
        elif kind == 4:
            observation["code"] = {
                "coding": [{"system": LOINC, "code": "8310-5", "display": "Body temperature"}]
            }
            observation["valueQuantity"] = {
                "value": 36.5 + (index % 5) / 10,
                "unit": "Cel",
                "system": "http://unitsofmeasure.org",
                "code": "Cel",
            }
        else:
            observation["code"] = {
                "coding": [{"system": LOINC, "code": "72166-2", "display": "Tobacco smoking status"}]
            }
            observation["valueCodeableConcept"] = {
                "coding": [{"system": SNOMED, "code": "266919005", "display": "Never smoked tobacco"}]
            }
        return observation
    if kind in (6, 7):  # a resolved, unrelated diagnosis
        code, display = OLD_CONDITIONS[index % len(OLD_CONDITIONS)]
        onset = _spread(index, count, HISTORY_START, HISTORY_END)
        return {
            "resourceType": "Condition",
            "id": rid,
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "resolved"}]},
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
            "code": {"coding": [{"system": ICD, "code": code, "display": display}], "text": display},
            "onsetDateTime": onset.isoformat(),
            "abatementDateTime": (onset + timedelta(days=60)).isoformat(),
            "recordedDate": onset.isoformat(),
            "subject": subject,
        }
    code, display = OLD_MEDICINES[index % len(OLD_MEDICINES)]  # a completed, unrelated prescription
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": code, "display": display}],
            "text": display,
        },
        "authoredOn": _spread(index, count, HISTORY_START, HISTORY_END).isoformat(),
        "subject": subject,
    }


def base_case() -> dict[str, Any]:
    return orjson.loads(CASE_FILE.read_bytes())


def grown(size: int) -> Patient:
    """The base case with extra history so that `size` resources are prefetched (size >= 18)."""
    case = copy.deepcopy(base_case())
    own = [e for e in case["bundle"]["entry"] if e["resource"]["resourceType"] != "Patient"]
    count = size - len(own)
    if count < 0:
        raise ValueError(f"the base case already has {len(own)} resources")
    case["bundle"]["entry"].extend(
        {"fullUrl": f"urn:bench:{i}", "resource": _extra(case["id"], i, count)} for i in range(count)
    )
    return Patient(size, case)


def patients(sizes: tuple[int, ...] = SIZES) -> dict[int, Patient]:
    return {size: grown(size) for size in sizes}


def templates() -> dict[str, dict[str, str]]:
    """hook -> the service's own prefetch templates (what discovery advertises)."""
    from cds_service.config import bundled
    from cds_service.hooks import build_services
    from cds_service.plans.loader import load_ruleset

    ruleset = load_ruleset(bundled("plandefinitions"))
    return {service.hook: dict(service.prefetch) for service in build_services(ruleset).values()}


def request_body(
    patient: Patient, call_name: str, *, prefetch: bool = True, fhir_server: str | None = None
) -> dict[str, Any]:
    """The full CDS Hooks request of one of the case's calls, with complete prefetch (as the test suite
    builds it) or without any."""
    from support.requests import hook_request

    call = patient.call(call_name)
    body = hook_request(
        patient.case, call, templates()[call["hook"]], hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"
    )
    if not prefetch:
        del body["prefetch"]
    if fhir_server is not None:
        body["fhirServer"] = fhir_server
    return body


def prefetched_count(body: dict[str, Any]) -> int:
    count = 0
    for value in (body.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            count += len(value.get("entry", []))
        elif value:
            count += 1
    return count


if __name__ == "__main__":
    for size, patient in patients().items():
        for name in ("patient-view", "select-removal"):
            body = request_body(patient, name)
            print(size, name, prefetched_count(body), len(orjson.dumps(body)))
