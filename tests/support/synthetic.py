"""Synthetic test patients for the post-fusion pain CDS service, with the cards RULES.md expects.

Every date is relative to the frozen hook time T0 = 2026-11-01T12:00:00Z. Each case is one Patient, their
record (a collection Bundle) and one or more hook calls with the expected cards, written independently of the
service's rules straight from /work/shared/clinical/RULES.md. Run ``python -m support.synthetic`` from
``tests/`` (or ``python tests/support/synthetic.py``) to regenerate ``fixtures/patients/*.json``.

The expectations follow RULES.md revision 2: section 8 (the V2-n changes) wins over sections 2-5 where they
differ. An expected card is ``card(rule, unmet)``: the rule id (``source.topic``), its indicator and, for the
cards in ``WITH_UNMET``, the unmet-criteria list. That list is the ids whose status is ``not-met`` or
``not-documented`` in the card's machine-readable ``postfusion-cds.criteria`` extension (V2-27), parts
included, written in the fixed order of RULES.md section 4 with no spaces:

- PATH-CC-INCOMPLETE: ``C1,C2,C3,C4,C5,C6s,C6d,C6p,C7``
- REV-NOT-MET: ``R1,R2(C...),R3,R4,R5`` (R2 carries its unmet C-ids), e.g. ``R1,R2(C1,C2,C7),R4``
- SCS-NOT-MET: ``S1(C...,INT),S2,X1,X2,X3,X4,X5,X6`` (S1 carries its unmet C1-C6 ids and INT), e.g.
  ``S1(INT),X3``
- SCS-PERM-NOT-MET (V2-21): ``P1,P2``, where P1 = a completed 63650 trial within 90 d and P2 = trial relief
  (LOCAL ``scs-trial-relief``) >= ``scs.trialReliefPct`` (50 %).

Criteria that are not required (``not-required``) never appear in a list. The hardware cards carry no list:
H1 (documented failure), H2 (pain source confirmed) and H3 (no pseudarthrosis, V2-4) are read from which HW
card is shown. Conservative-care evidence (C1-C5) counts only from ``conservative.countFromDays`` (42 d) after
the index fusion (V2-12), C7 runs from the first counted PT session (V2-13), and a medication is "currently
active" only if authored within ``medication.currentDays`` (180 d) or valid past T0 (V2-10): the cases keep
their records on the intended side of those lines.
"""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
T0_TEXT = "2026-11-01T12:00:00Z"
PATIENTS_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "patients"

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
LOCAL = "http://postfusion-cds.org/fhir/CodeSystem/local"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
UUID_NAMESPACE = uuid.UUID("6f1c1f0e-3d1b-4f43-9a57-2b8f6a0c5e11")

Json = dict[str, Any]

# The indicator of every rule id (RULES.md section 4 as changed by section 8, revision 2; default
# configuration). Revision 2 removed REV-ODDS, REV-REDFLAG and HW-REDFLAG (V2-22) and renamed
# MED-OPIOID-GABA to MED-SEDATING (V2-19). PATH-EARLY stays for a site that turns it on
# (`pathway.showEarly`), but is off by default (V2-22), so no case at the default configuration expects it.
INDICATORS = {
    **{f"RF-{n}": "critical" for n in range(1, 8)},
    "LAB-CRP": "warning",
    "PATH-NODATE": "info",
    "PATH-EARLY": "info",
    "PATH-CC-INCOMPLETE": "warning",
    "PATH-CC-COMPLETE": "info",
    "HW-EARLY": "warning",  # V2-6 (patient-view)
    "RISK-SMOKE": "info",
    "RISK-DEP": "info",
    "RISK-WEIGHT": "info",  # V2-20
    "VITD-LOW": "info",
    "MED-SEDATING": "warning",  # V2-19
    "REV-MET": "info",
    "REV-NOT-MET": "warning",
    "HW-MET": "info",
    "HW-FAIL-ONLY": "info",
    "HW-BLOCK-ONLY": "warning",
    "HW-NOT-SUPPORTED": "warning",
    "HW-NONUNION": "warning",  # V2-4
    "HW-INFECTION": "warning",  # V2-5
    "SCS-MET": "info",
    "SCS-NOT-MET": "warning",
    "SCS-PERM-MET": "info",  # V2-21
    "SCS-PERM-NOT-MET": "warning",  # V2-21
}
# Cards that carry an unmet-criteria list (the ids of the card's `postfusion-cds.criteria` extension, V2-27).
WITH_UNMET = {"PATH-CC-INCOMPLETE", "REV-NOT-MET", "SCS-NOT-MET", "SCS-PERM-NOT-MET"}

# Code tables (RULES.md section 3): code -> display.
CPT_DISPLAY = {
    "22612": "Arthrodesis, posterior or posterolateral technique, single interspace; lumbar",
    "22630": "Arthrodesis, posterior interbody technique, single interspace; lumbar",
    "22633": "Arthrodesis, combined posterior technique, single interspace; lumbar",
    "22558": "Arthrodesis, anterior interbody technique; lumbar",
    "22830": "Exploration of spinal fusion",
    "22849": "Reinsertion of spinal fixation device",
    "22850": "Removal of posterior nonsegmental instrumentation",
    "22852": "Removal of posterior segmental instrumentation",
    "22855": "Removal of anterior instrumentation",
    "22551": "Arthrodesis, anterior interbody, cervical below C2",
    "63030": "Laminotomy with decompression of nerve root, lumbar",
    "63650": "Percutaneous implantation of neurostimulator electrode array, epidural",
    "97110": "Therapeutic exercises",
    "97530": "Therapeutic activities",
    "97161": "Physical therapy evaluation, low complexity",
    "96158": "Health behavior intervention, individual, initial 30 minutes",
    "90837": "Psychotherapy, 60 minutes",
    "90791": "Psychiatric diagnostic evaluation",
    "62323": "Injection, lumbar or sacral epidural, with imaging guidance",
    "64483": "Injection, transforaminal epidural, lumbar or sacral, single level",
    "64493": "Injection, paravertebral facet joint, lumbar or sacral, single level",
    "64635": "Destruction by neurolytic agent, paravertebral facet joint nerve, lumbar or sacral",
    "99406": "Smoking and tobacco use cessation counseling visit, 3-10 minutes",
    "72131": "CT lumbar spine without contrast",
}
ICD_DISPLAY = {
    "Z98.1": "Arthrodesis status",
    "M96.1": "Postlaminectomy syndrome, not elsewhere classified",
    "M96.0": "Pseudarthrosis after fusion or arthrodesis",
    "M54.50": "Low back pain, unspecified",
    "M54.16": "Radiculopathy, lumbar region",
    "M54.17": "Radiculopathy, lumbosacral region",
    "M51.16": "Intervertebral disc disorders with radiculopathy, lumbar region",
    "G89.4": "Chronic pain syndrome",
    "G89.29": "Other chronic pain",
    "G83.4": "Cauda equina syndrome",
    "T84.216A": "Breakdown (mechanical) of internal fixation device of vertebrae, initial encounter",
    "T84.226A": "Displacement of internal fixation device of vertebrae, initial encounter",
    "T84.84XA": "Pain due to internal orthopedic prosthetic devices, implants and grafts, initial encounter",
    "T81.41XA": "Infection following a procedure, superficial incisional surgical site, initial encounter",
    "M53.2X6": "Spinal instabilities, lumbar region",
    "M53.2X7": "Spinal instabilities, lumbosacral region",
    "F17.210": "Nicotine dependence, cigarettes, uncomplicated",
    "F32.A": "Depression, unspecified",
    "F33.1": "Major depressive disorder, recurrent, moderate",
    "F11.20": "Opioid dependence, uncomplicated",
    "R13.10": "Dysphagia, unspecified",
    "R33.9": "Retention of urine, unspecified",
    "F11.21": "Opioid dependence, in remission",
    "F32.4": "Major depressive disorder, single episode, in partial remission",
    "M46.26": "Osteomyelitis of vertebra, lumbar region",
    "M62.81": "Muscle weakness (generalized)",
}
RX_DISPLAY = {
    "25480": "gabapentin",
    "187832": "pregabalin",
    "7804": "oxycodone",
    "5640": "ibuprofen",
    "7258": "naproxen",
    "310431": "gabapentin 300 MG Oral Capsule",
    "310434": "gabapentin 400 MG Oral Capsule",
    "1049621": "oxycodone hydrochloride 5 MG Oral Tablet",
    "836395": "tramadol hydrochloride 50 MG Oral Tablet",
    "197806": "ibuprofen 600 MG Oral Tablet",
    "198013": "naproxen 250 MG Oral Tablet",
    "615186": "duloxetine 60 MG Delayed Release Oral Capsule",
    "312940": "sertraline 50 MG Oral Tablet",
}
LOINC_DISPLAY = {
    "97909-6": "Oswestry disability index score ODI",
    "72514-3": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
    "44261-6": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
    "72166-2": "Tobacco smoking status",
    "1988-5": "C reactive protein [Mass/volume] in Serum or Plasma",
    "62292-8": "25-Hydroxyvitamin D2+25-Hydroxyvitamin D3 [Mass/volume] in Serum or Plasma",
    "8310-5": "Body temperature",
    "30522-7": "C reactive protein [Mass/volume] in Serum or Plasma by High sensitivity method",
}
SNOMED_DISPLAY = {
    "266927001": "Tobacco smoking consumption unknown",
    "91251008": "Physical therapy procedure",
    "304891004": "Cognitive behavioural therapy",
    "449868002": "Smokes tobacco daily",
    "428041000124106": "Occasional tobacco smoker",
    "77176002": "Smoker",
    "8517006": "Ex-smoker",
    "266919005": "Never smoked tobacco",
}


def days_ago(n: int) -> str:
    """The calendar date (YYYY-MM-DD) n days before T0."""
    return (T0 - timedelta(days=n)).date().isoformat()


def instant_ago(n: int, hour: int = 9, minute: int = 0) -> str:
    """A UTC dateTime on the date n days before T0, at hour:minute."""
    return f"{days_ago(n)}T{hour:02d}:{minute:02d}:00Z"


def coding(system: str, code: str, display: str | None = None) -> Json:
    """A Coding, with a display when one is given."""
    result = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def concept(system: str, code: str, display: str | None = None) -> Json:
    """A CodeableConcept with one Coding and the display as text."""
    result: Json = {"coding": [coding(system, code, display)]}
    if display:
        result["text"] = display
    return result


def _display(system: str, code: str) -> str | None:
    tables = {CPT: CPT_DISPLAY, ICD10: ICD_DISPLAY, RXNORM: RX_DISPLAY, LOINC: LOINC_DISPLAY}
    if system == SNOMED:
        return SNOMED_DISPLAY.get(code)
    if system == LOCAL:
        return code.replace("-", " ").capitalize()
    return tables.get(system, {}).get(code)


def code_of(code: str, system: str = CPT, display: str | None = None) -> Json:
    """A CodeableConcept for a code, with the display from the code tables when none is given."""
    return concept(system, code, display or _display(system, code))


# --- resource builders: each returns a resource without id/subject; Chart.add fills those in ---------------


def condition(
    code: str,
    *,
    system: str = ICD10,
    clinical: str | None = "active",
    verification: str = "confirmed",
    onset: str | None = None,
    recorded: str | None = None,
    display: str | None = None,
) -> Json:
    """A Condition. Pass clinical=None for an entered-in-error record (FHIR invariant con-5)."""
    resource: Json = {"resourceType": "Condition"}
    if clinical is not None:
        resource["clinicalStatus"] = concept(CLINICAL, clinical)
    resource["verificationStatus"] = concept(VERIFICATION, verification)
    resource["code"] = code_of(code, system, display)
    if onset:
        resource["onsetDateTime"] = onset
    resource["recordedDate"] = recorded or onset or days_ago(0)
    return resource


def procedure(
    code: str,
    *,
    system: str = CPT,
    status: str = "completed",
    performed: str | None = None,
    period: tuple[str, str] | None = None,
    display: str | None = None,
) -> Json:
    """A Procedure performed on a date (performedDateTime) or over a period (performedPeriod)."""
    resource: Json = {"resourceType": "Procedure", "status": status, "code": code_of(code, system, display)}
    if period:
        resource["performedPeriod"] = {"start": period[0], "end": period[1]}
    else:
        resource["performedDateTime"] = performed
    return resource


def observation(
    code: str,
    *,
    system: str = LOINC,
    effective: str,
    value: Any,
    unit: str | None = None,
    status: str = "final",
    issued: str | None = None,
    derived_from: list[str] | None = None,
    component: list[Json] | None = None,
) -> Json:
    """An Observation. value: bool → valueBoolean, int without unit → valueInteger, number with unit →
    valueQuantity (UCUM), dict → valueCodeableConcept."""
    resource: Json = {
        "resourceType": "Observation",
        "status": status,
        "code": code_of(code, system),
        "effectiveDateTime": effective,
    }
    if issued:
        resource["issued"] = issued
    if isinstance(value, bool):
        resource["valueBoolean"] = value
    elif isinstance(value, dict):
        resource["valueCodeableConcept"] = value
    elif unit is None:
        resource["valueInteger"] = value
    else:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if derived_from:
        resource["derivedFrom"] = [{"reference": ref} for ref in derived_from]
    if component:
        resource["component"] = component
    return resource


def medication_request(
    code: str | None,
    *,
    status: str = "active",
    authored: str,
    text: str | None = None,
    validity_end: str | None = None,
    validity_start: str | None = None,
) -> Json:
    """A MedicationRequest (intent order) with an RxNorm code, or only a text when code is None."""
    medication: Json = code_of(code, RXNORM) if code else {}
    if text:
        medication["text"] = text
    resource: Json = {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": medication,
        "authoredOn": authored,
    }
    if validity_end or validity_start:
        resource["dispenseRequest"] = {
            "validityPeriod": {"start": validity_start or authored, "end": validity_end or authored}
        }
    return resource


def medication_statement(
    code: str | None, *, status: str = "active", effective: str, text: str | None = None
) -> Json:
    """A MedicationStatement (patient-reported medication) with an RxNorm code or only a text."""
    medication: Json = code_of(code, RXNORM) if code else {}
    if text:
        medication["text"] = text
    return {
        "resourceType": "MedicationStatement",
        "status": status,
        "medicationCodeableConcept": medication,
        "effectiveDateTime": effective,
        "dateAsserted": effective,
    }


def service_request(code: str, *, system: str = CPT, status: str = "active", authored: str) -> Json:
    """A ServiceRequest in the record (active or completed), e.g. a referral."""
    return {
        "resourceType": "ServiceRequest",
        "status": status,
        "intent": "order",
        "code": code_of(code, system),
        "authoredOn": authored,
    }


def allergy(code: str, *, system: str = RXNORM, clinical: str = "active", recorded: str) -> Json:
    """An AllergyIntolerance to a substance (e.g. an NSAID ingredient)."""
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": concept(ALLERGY_CLINICAL, clinical),
        "verificationStatus": concept(ALLERGY_VERIFICATION, "confirmed"),
        "type": "allergy",
        "category": ["medication"],
        "code": code_of(code, system),
        "recordedDate": recorded,
    }


def imaging_study(*, started: str) -> Json:
    """The CT study an imaging report and a clinician's correlation attestation both rest on."""
    return {
        "resourceType": "ImagingStudy",
        "status": "available",
        "started": f"{started}T14:00:00Z",
        "modality": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT"}],
        "description": "CT lumbar spine",
    }


def diagnostic_report(
    *,
    effective: str,
    conclusion: list[str] | None = None,
    status: str = "final",
    text: str = "",
    study: str | None = None,
) -> Json:
    """An imaging DiagnosticReport (CT lumbar spine) with ICD-10-CM conclusion codes."""
    resource: Json = {
        "resourceType": "DiagnosticReport",
        "status": status,
        "code": code_of("72131", CPT),
        "effectiveDateTime": effective,
        "issued": f"{effective}T15:00:00Z" if len(effective) == 10 else effective,
    }
    if study:
        resource["imagingStudy"] = [{"reference": study}]
    if text:
        resource["conclusion"] = text
    if conclusion:
        resource["conclusionCode"] = [code_of(code, ICD10) for code in conclusion]
    return resource


def local_flag(code: str, value: bool, days: int, status: str = "final") -> Json:
    """A LOCAL boolean finding (red-flag screen item, attestation) observed n days before T0."""
    return observation(code, system=LOCAL, effective=instant_ago(days), value=value, status=status)


# --- expectations ---------------------------------------------------------------------------------------


def card(rule: str, unmet: str | None = None) -> Json:
    """One expected card: rule id, its indicator and, for NOT-MET/INCOMPLETE cards, the unmet ID list."""
    if (rule in WITH_UNMET) != (unmet is not None):
        raise ValueError(f"{rule}: unmet list {'required' if rule in WITH_UNMET else 'not allowed'}")
    result = {"ruleId": rule, "indicator": INDICATORS[rule]}
    if unmet is not None:
        result["unmet"] = unmet
    return result


# --- a patient's chart -----------------------------------------------------------------------------------


@dataclass
class Chart:
    """One synthetic case: the patient, their record, draft orders and the hook calls."""

    case_id: str
    description: str
    gender: str = "female"
    birth_date: str = "1962-04-17"
    resources: list[Json] = field(default_factory=list)
    drafts: list[Json] = field(default_factory=list)
    calls: list[Json] = field(default_factory=list)

    def add(self, resource: Json) -> str:
        """Add a record resource; give it a stable id and the patient reference. Returns "Type/id"."""
        kind = resource["resourceType"]
        number = sum(1 for r in self.resources if r["resourceType"] == kind) + 1
        resource = {"resourceType": kind, "id": f"{self.case_id}-{kind.lower()}-{number}", **resource}
        key = "patient" if kind == "AllergyIntolerance" else "subject"
        resource[key] = {"reference": f"Patient/{self.case_id}"}
        self.resources.append(resource)
        return f"{kind}/{resource['id']}"

    def draft(self, resource: Json) -> str:
        """A draft order (never in the record): a ServiceRequest code or a MedicationRequest."""
        kind = resource["resourceType"]
        resource = {
            "resourceType": kind,
            "id": f"{self.case_id}-draft-{len(self.drafts) + 1}",
            **resource,
            "status": "draft",
            "subject": {"reference": f"Patient/{self.case_id}"},
        }
        self.drafts.append(resource)
        return f"{kind}/{resource['id']}"

    def draft_order(self, code: str) -> str:
        """A draft ServiceRequest for a CPT procedure."""
        return self.draft(service_request(code, status="draft", authored=T0_TEXT))

    def draft_medication(self, code: str) -> str:
        """A draft MedicationRequest for an RxNorm code."""
        return self.draft(medication_request(code, status="draft", authored=T0_TEXT))

    def call(
        self,
        name: str,
        hook: str,
        expected: list[Json],
        drafts: list[str] | None = None,
        selections: list[str] | None = None,
    ) -> None:
        """A hook call. drafts: "Type/id" of this chart's drafts to send (default none for patient-view)."""
        context: Json = {}
        if hook != "patient-view":
            chosen = [d for d in self.drafts if f"{d['resourceType']}/{d['id']}" in (drafts or [])]
            if len(chosen) != len(drafts or []):
                raise ValueError(f"{self.case_id}/{name}: unknown draft in {drafts}")
            context["draftOrders"] = {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"fullUrl": _full_url(self.case_id, d), "resource": d} for d in chosen],
            }
            if hook == "order-select":
                if not selections or not set(selections) <= set(drafts or []):
                    raise ValueError(f"{self.case_id}/{name}: selections must name sent drafts")
                context["selections"] = selections
        self.calls.append({"name": name, "hook": hook, "context": context, "expected": expected})

    # --- common clinical building blocks --------------------------------------------------------------

    def fusion(self, days: int, code: str = "22612") -> str:
        """A completed lumbar fusion n days before T0."""
        return self.add(procedure(code, performed=days_ago(days)))

    def pain(self, nrs: int | None = 6, code: str = "M96.1", onset: int = 330, nrs_days: int = 10) -> None:
        """In-scope pain: an active post-fusion pain Condition and (optionally) a recent NRS."""
        if code:
            self.add(condition(code, onset=days_ago(onset)))
        if nrs is not None:
            self.nrs(nrs, nrs_days)

    def nrs(self, value: int, days: int, issued: str | None = None, quantity: bool = False) -> None:
        """A pain NRS 0-10 (LOINC 72514-3)."""
        self.add(
            observation(
                "72514-3",
                effective=instant_ago(days),
                value=value,
                unit="{score}" if quantity else None,
                issued=issued,
            )
        )

    def pt_course(self, first: int, sessions: int = 8, every: int = 8, code: str = "97110") -> None:
        """Completed PT sessions, the first n days before T0, one every `every` days."""
        for index in range(sessions):
            self.add(procedure(code if index else "97161", performed=days_ago(first - index * every)))

    def cbt(self, days: int, code: str = "96158") -> None:
        """A completed CBT / pain-psychology session."""
        self.add(procedure(code, performed=days_ago(days)))

    def nsaid(self, days: int, code: str = "5640", status: str = "completed") -> None:
        """A systemic NSAID trial (MedicationRequest)."""
        self.add(medication_request(code, status=status, authored=days_ago(days)))

    def gabapentinoid(self, days: int, code: str = "25480", status: str = "completed") -> None:
        """A gabapentin/pregabalin trial (MedicationRequest)."""
        self.add(medication_request(code, status=status, authored=days_ago(days)))

    def esi(self, days: int, code: str = "62323") -> None:
        """A completed lumbar epidural steroid injection."""
        self.add(procedure(code, performed=days_ago(days)))

    def never_smoked(self, days: int = 200) -> None:
        """Smoking status: never smoked."""
        self.smoking("266919005", days)

    def smoking(self, answer: str, days: int) -> None:
        """A tobacco smoking status Observation (LOINC 72166-2) with a SNOMED answer."""
        self.add(observation("72166-2", effective=days_ago(days), value=code_of(answer, SNOMED)))

    def full_conservative_care(self, start: int, radicular: bool = False) -> None:
        """Complete post-fusion conservative care starting n days before T0: 8 PT sessions over 56 d, two CBT
        sessions inside the PT window, a completed NSAID trial and, if radicular, gabapentin and an ESI."""
        self.nsaid(start)
        self.pt_course(start - 5)
        self.cbt(start - 20)
        self.cbt(start - 45)
        if radicular:
            self.gabapentinoid(start - 10)
            self.esi(start - 80)

    def to_json(self) -> Json:
        """The case file."""
        patient = {
            "resourceType": "Patient",
            "id": self.case_id,
            "active": True,
            "name": [{"family": "Synthetic", "given": [self.case_id]}],
            "gender": self.gender,
            "birthDate": self.birth_date,
        }
        entries = [{"fullUrl": _full_url(self.case_id, r), "resource": r} for r in [patient, *self.resources]]
        return {
            "id": self.case_id,
            "description": self.description,
            "t0": T0_TEXT,
            "bundle": {"resourceType": "Bundle", "type": "collection", "entry": entries},
            "calls": self.calls,
        }


def _full_url(case_id: str, resource: Json) -> str:
    name = "/".join((case_id, resource["resourceType"], resource["id"]))
    return f"urn:uuid:{uuid.uuid5(UUID_NAMESPACE, name)}"


def in_scope(ch: Chart, fusion_days: int = 400, nrs: int | None = 6, fusion_code: str = "22612") -> None:
    """The usual in-scope patient: a dated lumbar fusion, active M96.1 and a recent NRS, never smoked."""
    ch.fusion(fusion_days, fusion_code)
    ch.pain(nrs=nrs, onset=min(fusion_days - 30, 330))
    ch.never_smoked()


# --- the cases ---------------------------------------------------------------------------------------------

CASES: list[Callable[[], Chart]] = []


def case(build: Callable[[], Chart]) -> Callable[[], Chart]:
    """Register a case builder."""
    CASES.append(build)
    return build


@case
def p01() -> Chart:
    ch = Chart(
        "p01-out-no-fusion",
        "Back pain and a current smoker but no lumbar fusion: the Z98.1 is refuted and the fusion Procedure "
        "is not-done, so the patient is out of scope; a fusion order is a primary fusion (no REV card).",
        gender="male",
    )
    ch.add(condition("M54.50", onset=days_ago(200)))
    ch.nrs(7, 10)
    ch.smoking("449868002", 30)
    ch.add(condition("Z98.1", verification="refuted", recorded=days_ago(300)))
    ch.add(procedure("22612", status="not-done", performed=days_ago(300)))
    primary = ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [])
    ch.call("sign-primary-fusion", "order-sign", [], drafts=[primary])
    return ch


@case
def p02() -> Chart:
    ch = Chart(
        "p02-out-fusion-no-pain",
        "Fusion 500 d ago, low back pain resolved and the latest NRS is 2 (same effective time as an NRS 7, "
        "later issued): no F-PAIN, so out of scope.",
    )
    ch.fusion(500, "22630")
    ch.add(condition("M54.50", clinical="resolved", onset=days_ago(450)))
    ch.nrs(8, 60)
    ch.nrs(7, 10, issued=instant_ago(10, 9, 30))
    ch.nrs(2, 10, issued=instant_ago(10, 11))
    ch.never_smoked()
    ch.call("chart-open", "patient-view", [])
    return ch


@case
def p03() -> Chart:
    ch = Chart(
        "p03-cc-incomplete-radicular",
        "Radicular patient 400 d after fusion with only recent NSAID and gabapentin (SCD) trials: no PT, CBT "
        "or ESI and under 90 d of care; revision and SCS drafts are not met.",
        gender="male",
    )
    in_scope(ch)
    ch.add(condition("M54.16", onset=days_ago(200)))
    ch.nsaid(60, "198013")
    ch.gabapentinoid(50, "310431", status="active")
    revision, scs = ch.draft_order("22633"), ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C2,C5,C7")])
    ch.call(
        "sign-revision",
        "order-sign",
        [card("REV-NOT-MET", "R2(C1,C2,C5,C7),R3,R4,R5")],
        drafts=[revision],
    )
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "S1(C1,C2,C5,INT),X3")], drafts=[scs])
    return ch


@case
def p04() -> Chart:
    ch = Chart(
        "p04-cc-complete-asd",
        "Complete radicular conservative care, severe ODI and adjacent-segment disease with lumbosacral "
        "instability (R5), but no imaging-symptom correlation or block: revision not met on R4 only.",
    )
    in_scope(ch, fusion_days=420, fusion_code="22633")
    ch.add(condition("M51.16", onset=days_ago(350)))
    ch.full_conservative_care(300, radicular=True)
    ch.add(observation("97909-6", effective=days_ago(20), value=48, unit="%"))
    ch.add(condition("adjacent-segment-disease", system=LOCAL, onset=days_ago(60)))
    ch.add(condition("M53.2X7", onset=days_ago(60)))
    revision = ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    ch.call(
        "select-revision",
        "order-select",
        [card("REV-NOT-MET", "R4")],
        drafts=[revision],
        selections=[revision],
    )
    return ch


@case
def p05() -> Chart:
    ch = Chart(
        "p05-rev-met-pseudarthrosis",
        "All revision criteria met: complete care, ODI 52 %, imaging-symptom correlation attested from a CT, "
        "confirmed pseudarthrosis: REV-MET. An earlier laminotomy makes this lumbar surgery #3; the repeat-"
        "surgery figure is now part of the REV card's detail, not a REV-ODDS card (V2-22).",
        gender="male",
    )
    ch.add(procedure("63030", performed=days_ago(1100)))
    in_scope(ch, fusion_days=500, fusion_code="22630")
    ch.full_conservative_care(380)
    ch.add(observation("97909-6", effective=days_ago(15), value=52, unit="%"))
    study = ch.add(imaging_study(started=days_ago(100)))
    ch.add(
        diagnostic_report(effective=days_ago(100), conclusion=["M96.0"], text="Non-union L4-5", study=study)
    )
    ch.add(
        observation(
            "imaging-symptom-correlation",
            system=LOCAL,
            effective=instant_ago(90),
            value=True,
            derived_from=[study],
        )
    )
    ch.add(condition("M96.0", onset=days_ago(100)))
    revision = ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    ch.call("sign-revision", "order-sign", [card("REV-MET")], drafts=[revision])
    return ch


@case
def p06() -> Chart:
    ch = Chart(
        "p06-early-exploration",
        "Fusion 45 d ago with low back pain: inside the healing window, where PATH-EARLY is off by default "
        "(V2-22), so chart open gives no card. An exploration (22830) draft fails R1 and the rest; the "
        "ibuprofen on post-op day 15 is post-operative analgesia, not an NSAID trial (V2-12): C4 unmet.",
    )
    ch.fusion(45)
    ch.add(condition("M54.50", onset=days_ago(40)))
    ch.nrs(7, 5)
    ch.never_smoked()
    ch.nsaid(30, "197806", status="active")
    exploration = ch.draft_order("22830")
    ch.call("chart-open", "patient-view", [])
    ch.call(
        "sign-exploration",
        "order-sign",
        [card("REV-NOT-MET", "R1,R2(C1,C2,C4,C7),R3,R4,R5")],
        drafts=[exploration],
    )
    return ch


@case
def p07() -> Chart:
    ch = Chart(
        "p07-nodate-z98",
        "Fusion known only from Z98.1 (its recordedDate is not a fusion date) with post-fusion pain: "
        "PATH-NODATE.",
    )
    ch.add(condition("Z98.1", recorded=days_ago(200)))
    ch.pain()
    ch.never_smoked()
    ch.pt_course(150)
    ch.call("chart-open", "patient-view", [card("PATH-NODATE")])
    return ch


@case
def p08() -> Chart:
    ch = Chart(
        "p08-nsaid-allergy-waives-c4",
        "Complete PT + CBT, no NSAID trial but an active ibuprofen allergy: C4 is waived, care complete.",
    )
    in_scope(ch)
    ch.add(allergy("5640", recorded=days_ago(2000)))
    ch.pt_course(295)
    ch.cbt(280)
    ch.cbt(255)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p09() -> Chart:
    ch = Chart(
        "p09-resolved-radiculopathy-pt-period",
        "Resolved radiculopathy makes C3/C5 not required; PT is one Procedure whose performedPeriod spans "
        "70 d (C1 b); CBT inside that window: care complete.",
    )
    in_scope(ch)
    ch.add(condition("M54.17", clinical="resolved", onset=days_ago(350)))
    ch.add(procedure("97110", period=(days_ago(300), days_ago(230))))
    ch.cbt(270)
    ch.nsaid(310, "7258")
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p10() -> Chart:
    ch = Chart(
        "p10-smoker-depressed-chronic-pain",
        "Current smoker, PHQ-9 14, chronic pain syndrome, PT without CBT: C2/C6s/C6d/C6p unmet, RISK-SMOKE "
        "and RISK-DEP; an SCS draft fails S1 (incl. INT), X3 and X5.",
        gender="male",
    )
    ch.fusion(400)
    ch.pain(nrs=7)
    ch.smoking("449868002", 20)
    ch.add(observation("44261-6", effective=days_ago(30), value=14))
    ch.add(condition("G89.4", onset=days_ago(200)))
    ch.nsaid(300, "7258")
    ch.pt_course(295)
    scs = ch.draft_order("63650")
    ch.call(
        "chart-open",
        "patient-view",
        [card("PATH-CC-INCOMPLETE", "C2,C6s,C6d,C6p"), card("RISK-SMOKE"), card("RISK-DEP")],
    )
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "S1(C2,C6s,C6d,C6p,INT),X3,X5")], drafts=[scs])
    return ch


@case
def p11() -> Chart:
    ch = Chart(
        "p11-smoking-observation-newer",
        "Active F17.210 from 700 d ago but an ex-smoker Observation 30 d ago: the newer Observation wins, "
        "not a current smoker.",
    )
    ch.fusion(400)
    ch.pain()
    ch.add(condition("F17.210", onset=days_ago(700)))
    ch.smoking("8517006", 30)
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p12() -> Chart:
    ch = Chart(
        "p12-smoking-condition-newer",
        "Two smoking Observations (latest: never smoked, 400 d ago) and an F17.210 with onset 20 d ago: the "
        "newer Condition wins, current smoker without cessation support.",
        gender="male",
    )
    ch.fusion(400)
    ch.pain()
    ch.smoking("449868002", 600)
    ch.smoking("266919005", 400)
    ch.add(condition("F17.210", onset=days_ago(20)))
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C6s"), card("RISK-SMOKE")])
    return ch


@case
def p13() -> Chart:
    ch = Chart(
        "p13-smoker-cessation-counselled",
        "Current smoker with cessation counselling (99406) 40 d ago: C6s met, no RISK-SMOKE.",
    )
    ch.fusion(400)
    ch.pain()
    ch.smoking("428041000124106", 10)
    ch.add(procedure("99406", performed=days_ago(40)))
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p14() -> Chart:
    ch = Chart(
        "p14-depression-treated",
        "Depression (F32.A, PHQ-9 15) treated with a current sertraline SCD: C6d met, no RISK-DEP.",
    )
    in_scope(ch)
    ch.add(condition("F32.A", onset=days_ago(250)))
    ch.add(observation("44261-6", effective=days_ago(20), value=15))
    ch.add(medication_request("312940", authored=days_ago(100)))
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p15() -> Chart:
    ch = Chart(
        "p15-depression-expired-rx",
        "Recurrent depression whose duloxetine order (authored 150 d ago, within medication.currentDays) "
        "is still 'active' but its validityPeriod ended 30 d ago: not currently active (V2-10), untreated, "
        "so C6d unmet and RISK-DEP.",
    )
    in_scope(ch)
    ch.add(condition("F33.1", onset=days_ago(300)))
    ch.add(observation("44261-6", effective=days_ago(20), value=12))
    ch.add(medication_request("615186", authored=days_ago(150), validity_end=days_ago(30)))
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C6d"), card("RISK-DEP")])
    return ch


@case
def p16() -> Chart:
    ch = Chart(
        "p16-crp-mgdl-vitamin-d",
        "Latest CRP 1.8 mg/dL (= 18 mg/L) 295 d after fusion: LAB-CRP; 25-OH vitamin D 22 ng/mL: VITD-LOW; "
        "care complete.",
    )
    in_scope(ch, fusion_days=300)
    ch.full_conservative_care(250)
    ch.add(observation("1988-5", effective=days_ago(25), value=4, unit="mg/L"))
    ch.add(observation("1988-5", effective=days_ago(5), value=1.8, unit="mg/dL"))
    ch.add(observation("62292-8", effective=days_ago(60), value=22, unit="ng/mL"))
    ch.call("chart-open", "patient-view", [card("LAB-CRP"), card("PATH-CC-COMPLETE"), card("VITD-LOW")])
    return ch


@case
def p17() -> Chart:
    ch = Chart(
        "p17-crp-too-early",
        "Fusion 20 d ago, CRP 40 mg/L drawn 16 d post-op (before 42 d, not interpreted), normal temperature: "
        "no LAB-CRP and no red flag; inside the healing window PATH-EARLY is off by default (V2-22), so no "
        "card at all.",
    )
    ch.fusion(20)
    ch.add(condition("M54.50", onset=days_ago(15)))
    ch.nrs(8, 2)
    ch.never_smoked()
    ch.add(observation("1988-5", effective=days_ago(4), value=40, unit="mg/L"))
    ch.add(observation("8310-5", effective=instant_ago(4), value=37.4, unit="Cel"))
    ch.call("chart-open", "patient-view", [])
    return ch


@case
def p18() -> Chart:
    ch = Chart(
        "p18-rf1-cauda-equina-opioid",
        "Cauda equina (G83.4) 3 d ago with current oxycodone + gabapentin SCDs (both authored within 180 d, "
        "V2-10): RF-1 suppresses PATH, MED-SEDATING (V2-19); revision and hardware drafts get RF-1 and no "
        "REV/HW card (REV-REDFLAG and HW-REDFLAG are gone, V2-22).",
        gender="male",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(condition("G83.4", onset=days_ago(3)))
    ch.add(medication_request("1049621", authored=days_ago(60)))
    ch.add(medication_request("310434", authored=days_ago(120)))
    revision, removal = ch.draft_order("22612"), ch.draft_order("22852")
    ch.call("chart-open", "patient-view", [card("RF-1"), card("MED-SEDATING")])
    ch.call("sign-revision", "order-sign", [card("RF-1")], drafts=[revision])
    ch.call("select-removal", "order-select", [card("RF-1")], drafts=[removal], selections=[removal])
    return ch


@case
def p19() -> Chart:
    ch = Chart(
        "p19-rf1-screen-item",
        "Red-flag screen item rf-bladder-bowel-dysfunction = true 2 d ago: RF-1, no PATH card.",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(local_flag("rf-bladder-bowel-dysfunction", True, 2))
    ch.call("chart-open", "patient-view", [card("RF-1")])
    return ch


@case
def p20() -> Chart:
    ch = Chart(
        "p20-rf3-fever-degf-scs",
        "Fever 102.2 [degF] (39 Cel, above redFlag.feverC 38.5) with wound drainage: RF-3. At order-sign the "
        "revision and removal gates are not evaluated and show no card (V2-22) while SCS is still evaluated "
        "(section 2.6) and fails only X6.",
    )
    in_scope(ch, nrs=7)
    ch.add(condition("M54.16", onset=days_ago(320)))
    ch.full_conservative_care(300, radicular=True)
    ch.add(observation("8310-5", effective=instant_ago(2), value=102.2, unit="[degF]"))
    ch.add(local_flag("rf-wound-drainage", True, 2))
    ch.add(procedure("90791", performed=days_ago(100)))
    ch.add(
        observation(
            "neuromodulation-psych-clearance",
            system=LOCAL,
            effective=days_ago(95),
            value=code_of("cleared", LOCAL),
        )
    )
    drafts = [ch.draft_order("22612"), ch.draft_order("22852"), ch.draft_order("63650")]
    ch.call("chart-open", "patient-view", [card("RF-3")])
    ch.call(
        "sign-three-procedures",
        "order-sign",
        [card("RF-3"), card("SCS-NOT-MET", "X6")],
        drafts=drafts,
    )
    return ch


@case
def p21() -> Chart:
    ch = Chart(
        "p21-rf2-progressive-weakness",
        "rf-progressive-weakness = true 5 d ago: RF-2 (the non-specific M62.81 is not used).",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(condition("M62.81", onset=days_ago(5)))
    ch.add(local_flag("rf-progressive-weakness", True, 5))
    ch.call("chart-open", "patient-view", [card("RF-2")])
    return ch


@case
def p22() -> Chart:
    ch = Chart(
        "p22-rf4-rf5-rf7",
        "Implant crack, unremitting night pain and grinding over hardware within 14 d: RF-4, RF-5, RF-7; a "
        "weakness item 40 d ago is outside the red-flag lookback.",
        gender="male",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(local_flag("rf-implant-crack-sharp-pain", True, 4))
    ch.add(local_flag("rf-unremitting-night-pain", True, 6))
    ch.add(local_flag("rf-hardware-grinding-or-bulge", True, 3))
    ch.add(local_flag("rf-progressive-weakness", True, 40))
    ch.call("chart-open", "patient-view", [card("RF-4"), card("RF-5"), card("RF-7")])
    return ch


@case
def p23() -> Chart:
    ch = Chart(
        "p23-rf6-cervical-airway",
        "Earlier cervical fusion (22551), neck stiffness and new dysphagia (R13.10) 3 d ago: RF-6.",
    )
    ch.add(procedure("22551", performed=days_ago(1500)))
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(local_flag("rf-neck-stiffness", True, 3))
    ch.add(condition("R13.10", onset=days_ago(3)))
    ch.call("chart-open", "patient-view", [card("RF-6")])
    return ch


@case
def p24() -> Chart:
    ch = Chart(
        "p24-entered-in-error-refuted",
        "Cauda equina entered-in-error, a red-flag screen item entered-in-error, a preliminary weakness item "
        "and a refuted radiculopathy are all ignored: care complete, no RF card.",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(condition("G83.4", clinical=None, verification="entered-in-error", onset=days_ago(3)))
    ch.add(local_flag("rf-bladder-bowel-dysfunction", True, 2, status="entered-in-error"))
    ch.add(local_flag("rf-progressive-weakness", True, 3, status="preliminary"))
    ch.add(condition("M54.16", verification="refuted", onset=days_ago(100)))
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p25() -> Chart:
    ch = Chart(
        "p25-hw-met-select-vs-sign",
        "Confirmed rod breakage (T84.216A), no pseudarthrosis (H3) and an 85 % hardware block: HW-MET. "
        "Two drafts (removal and oxycodone, with gabapentin current: authored 120 d ago, V2-10): "
        "order-select sees only the selected one, order-sign both; the opioid draft gives MED-SEDATING "
        "(V2-19).",
        gender="male",
    )
    in_scope(ch, fusion_days=500)
    ch.full_conservative_care(300)
    ch.add(condition("T84.216A", onset=days_ago(60)))
    ch.add(observation("hardware-block-relief", system=LOCAL, effective=days_ago(30), value=85, unit="%"))
    ch.add(medication_request("310431", authored=days_ago(120)))
    removal, opioid = ch.draft_order("22852"), ch.draft_medication("1049621")
    both = [removal, opioid]
    ch.call("select-removal", "order-select", [card("HW-MET")], drafts=both, selections=[removal])
    ch.call("select-opioid", "order-select", [card("MED-SEDATING")], drafts=both, selections=[opioid])
    ch.call("sign-both", "order-sign", [card("HW-MET"), card("MED-SEDATING")], drafts=both)
    return ch


@case
def p26() -> Chart:
    ch = Chart(
        "p26-hw-fail-only-lucency",
        "Peri-screw lucency 1.8 mm, pain from the device (T84.84XA, not failure), no block or correlation: "
        "HW-FAIL-ONLY; no conservative care at all; SCS fails S1, S2 (lucency is R5) and X3.",
    )
    ch.fusion(500)
    ch.add(condition("T84.84XA", onset=days_ago(200)))
    ch.nrs(6, 10)
    ch.never_smoked()
    ch.add(observation("peri-screw-lucency", system=LOCAL, effective=days_ago(60), value=1.8, unit="mm"))
    removal, scs = ch.draft_order("22850"), ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C2,C4,C7")])
    ch.call("sign-removal", "order-sign", [card("HW-FAIL-ONLY")], drafts=[removal])
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "S1(C1,C2,C4,INT),S2,X3")], drafts=[scs])
    return ch


@case
def p27() -> Chart:
    ch = Chart(
        "p27-hw-block-only",
        "Hardware block 80 % but no documented failure (T84.84XA is not failure, lucency only 0.6 mm): "
        "HW-BLOCK-ONLY.",
    )
    in_scope(ch, fusion_days=500)
    ch.full_conservative_care(300)
    ch.add(condition("T84.84XA", onset=days_ago(100)))
    ch.add(observation("hardware-block-relief", system=LOCAL, effective=days_ago(40), value=80, unit="%"))
    ch.add(observation("peri-screw-lucency", system=LOCAL, effective=days_ago(40), value=0.6, unit="mm"))
    removal = ch.draft_order("22852")
    ch.call("sign-removal", "order-sign", [card("HW-BLOCK-ONLY")], drafts=[removal])
    return ch


@case
def p28() -> Chart:
    ch = Chart(
        "p28-hw-not-supported",
        "Provisional T84.216A, a preliminary CT report coding displacement and a 60 % hardware block: none "
        "is documented failure or a >70 % block, so HW-NOT-SUPPORTED.",
        gender="male",
    )
    in_scope(ch, fusion_days=500)
    ch.full_conservative_care(300)
    ch.add(condition("T84.216A", verification="provisional", onset=days_ago(50)))
    ch.add(diagnostic_report(effective=days_ago(30), conclusion=["T84.226A"], status="preliminary"))
    ch.add(observation("hardware-block-relief", system=LOCAL, effective=days_ago(30), value=60, unit="%"))
    removal = ch.draft_order("22855")
    ch.call(
        "select-removal", "order-select", [card("HW-NOT-SUPPORTED")], drafts=[removal], selections=[removal]
    )
    return ch


@case
def p29() -> Chart:
    ch = Chart(
        "p29-hw-report-conclusion-reinsertion",
        "Final CT report concluding screw displacement (T84.226A) plus an imaging-symptom correlation "
        "attestation: a reinsertion (22849) draft gets HW-MET.",
    )
    in_scope(ch, fusion_days=500)
    ch.full_conservative_care(300)
    study = ch.add(imaging_study(started=days_ago(30)))
    ch.add(
        diagnostic_report(
            effective=days_ago(30), conclusion=["T84.226A"], text="L5 screw backed out", study=study
        )
    )
    ch.add(
        observation(
            "imaging-symptom-correlation",
            system=LOCAL,
            effective=instant_ago(25),
            value=True,
            derived_from=[study],
        )
    )
    reinsertion = ch.draft_order("22849")
    ch.call("sign-reinsertion", "order-sign", [card("HW-MET")], drafts=[reinsertion])
    return ch


@case
def p30() -> Chart:
    ch = Chart(
        "p30-scs-met",
        "Radicular FBSS 500 d after fusion with complete care incl. ESI, latest NRS 7 (Quantity {score}), "
        "psych evaluation and clearance, no surgical target: SCS-MET.",
    )
    ch.fusion(500, "22633")
    ch.pain(nrs=None)
    ch.nrs(3, 60)
    ch.nrs(7, 8, quantity=True)
    ch.never_smoked()
    ch.add(condition("M54.16", onset=days_ago(420)))
    ch.full_conservative_care(380, radicular=True)
    ch.add(procedure("90791", performed=days_ago(60)))
    ch.add(
        observation(
            "neuromodulation-psych-clearance",
            system=LOCAL,
            effective=days_ago(55),
            value=code_of("cleared", LOCAL),
        )
    )
    ch.add(local_flag("prefers-avoid-further-spine-surgery", True, 20))
    scs = ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    ch.call("sign-scs", "order-sign", [card("SCS-MET")], drafts=[scs])
    return ch


@case
def p31() -> Chart:
    ch = Chart(
        "p31-scs-not-met-target-sud-ssi",
        "Complete care with a facet injection, but pseudarthrosis (surgical target), latest NRS 4, psych "
        "evaluation 500 d ago, untreated opioid use disorder and a superficial SSI: SCS fails "
        "S2,X2,X3,X4,X6.",
        gender="male",
    )
    in_scope(ch, fusion_days=450, nrs=None)
    ch.nrs(8, 50)
    ch.nrs(4, 5)
    ch.full_conservative_care(350)
    ch.add(procedure("64493", performed=days_ago(150)))
    ch.add(condition("M96.0", onset=days_ago(90)))
    ch.add(procedure("90791", performed=days_ago(500)))
    ch.add(condition("F11.20", onset=days_ago(200)))
    ch.add(condition("T81.41XA", onset=days_ago(10)))
    scs = ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "S2,X2,X3,X4,X6")], drafts=[scs])
    return ch


@case
def p32() -> Chart:
    ch = Chart(
        "p32-scs-early-instability-not-cleared",
        "Fusion 160 d ago (under 180 d), care complete: NSAID, 8 PT sessions and CBT all from post-op day "
        "48 on (V2-12) and PT begun 110 d ago (C7, V2-13); lumbar instability, psych evaluation but not "
        "cleared: SCS fails S1(INT),S2,X1,X3 and the revision draft fails R1,R3,R4,R5. (Revision 1 had the "
        "care from post-op day 10, which no longer counts.)",
    )
    in_scope(ch, fusion_days=160)
    ch.add(condition("M53.2X6", onset=days_ago(30)))
    ch.nsaid(112, "197806")
    ch.pt_course(110)
    ch.cbt(90)
    ch.add(procedure("90791", performed=days_ago(50)))
    ch.add(
        observation(
            "neuromodulation-psych-clearance",
            system=LOCAL,
            effective=days_ago(45),
            value=code_of("not-cleared", LOCAL),
        )
    )
    scs, revision = ch.draft_order("63650"), ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    ch.call(
        "sign-scs-and-revision",
        "order-sign",
        [card("SCS-NOT-MET", "S1(INT),S2,X1,X3"), card("REV-NOT-MET", "R1,R3,R4,R5")],
        drafts=[scs, revision],
    )
    return ch


@case
def p33() -> Chart:
    ch = Chart(
        "p33-revision-resets-index",
        "Fusion 900 d ago with full care afterwards, then a revision fusion 150 d ago: the index resets, so "
        "only the post-revision NSAID (post-op day 50, V2-12) counts (C1,C2,C3,C5 unmet) and R1/X1 are not "
        "met; with no counted PT since the new index the failure clock C7 is not documented (V2-13).",
        gender="male",
    )
    ch.fusion(900)
    ch.nsaid(810, "7258")
    ch.pt_course(800)
    ch.cbt(780)
    ch.gabapentinoid(790)
    ch.esi(700)
    ch.fusion(150, "22633")
    ch.pain(nrs=7, onset=100)
    ch.add(condition("M54.16", onset=days_ago(120)))
    ch.never_smoked()
    ch.nsaid(100, "5640", status="active")
    ch.add(condition("T84.226A", onset=days_ago(30)))
    exploration, scs = ch.draft_order("22830"), ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C2,C3,C5,C7")])
    ch.call(
        "sign-exploration",
        "order-sign",
        [card("REV-NOT-MET", "R1,R2(C1,C2,C3,C5,C7),R3,R4")],
        drafts=[exploration],
    )
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "S1(C1,C2,C3,C5,INT),S2,X1,X3")], drafts=[scs])
    return ch


@case
def p34() -> Chart:
    ch = Chart(
        "p34-pt-too-short-nsaid-cancelled",
        "Eight PT sessions over only 28 d (two later not-done sessions are ignored), a cancelled ibuprofen "
        "and a draft naproxen in the record: C1, C2 and C4 unmet.",
    )
    in_scope(ch)
    ch.pt_course(200, every=4)
    ch.add(procedure("97110", status="not-done", performed=days_ago(160)))
    ch.add(procedure("97110", status="not-done", performed=days_ago(150)))
    ch.nsaid(210, "5640", status="cancelled")
    ch.nsaid(190, "7258", status="draft")
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C2,C4")])
    return ch


@case
def p35() -> Chart:
    ch = Chart(
        "p35-cbt-outside-pt-window",
        "Chronic pain syndrome; CBT sessions 120 and 100 d ago, far outside the PT window (295-239 d ago) "
        "±30 d: C2 and therefore C6p unmet.",
    )
    in_scope(ch)
    ch.add(condition("G89.4", onset=days_ago(250)))
    ch.nsaid(300, "7258")
    ch.pt_course(295)
    ch.cbt(120)
    ch.add(procedure("304891004", system=SNOMED, performed=days_ago(100)))
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C2,C6p")])
    return ch


@case
def p36() -> Chart:
    ch = Chart(
        "p36-product-codes-and-text-medication",
        "Product-level SCD codes (naproxen 250 mg, tramadol 50 mg) and a pregabalin known only by its text "
        "(authored 150 d ago, so still current, V2-10): C3/C4 met, and tramadol + pregabalin give "
        "MED-SEDATING (V2-19).",
        gender="male",
    )
    in_scope(ch)
    ch.add(condition("M51.16", onset=days_ago(330)))
    ch.nsaid(300, "198013")
    ch.pt_course(295)
    ch.cbt(280)
    ch.cbt(255)
    ch.add(medication_request(None, authored=days_ago(150), text="Pregabalin 75 mg capsule"))
    ch.esi(220, "64483")
    ch.add(medication_request("836395", authored=days_ago(40)))
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE"), card("MED-SEDATING")])
    return ch


@case
def p37() -> Chart:
    ch = Chart(
        "p37-expired-opioid-draft-opioid",
        "Current gabapentin with an oxycodone order whose validityPeriod ended 20 d ago: no combination at "
        "chart open; a draft oxycodone creates it (MED-SEDATING, V2-19); a draft PT referral alone triggers "
        "nothing.",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(medication_request("310434", authored=days_ago(100)))
    ch.add(medication_request("1049621", authored=days_ago(80), validity_end=days_ago(20)))
    opioid = ch.draft_medication("1049621")
    referral = ch.draft(service_request("91251008", system=SNOMED, status="draft", authored=T0_TEXT))
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    ch.call("select-referral", "order-select", [], drafts=[opioid, referral], selections=[referral])
    ch.call("sign-both", "order-sign", [card("MED-SEDATING")], drafts=[opioid, referral])
    return ch


@case
def p38() -> Chart:
    ch = Chart(
        "p38-nrs-tie-broken-by-issued",
        "Pain known only from two NRS with the same effective time: the later-issued 7 wins over 3, so the "
        "patient is in scope; care complete.",
    )
    ch.fusion(250)
    ch.nrs(7, 10, issued=instant_ago(10, 10, 30))
    ch.nrs(3, 10, issued=instant_ago(10, 9, 10))
    ch.never_smoked()
    ch.full_conservative_care(200)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p39() -> Chart:
    ch = Chart(
        "p39-boundary-fusion-89-days",
        "Boundary probe: fusion exactly 89 d before T0 is still inside the 90-day healing window, where "
        "PATH-EARLY is off by default (V2-22): no card, where p40 one day later gets PATH-CC-INCOMPLETE.",
    )
    ch.fusion(89)
    ch.add(condition("M54.50", onset=days_ago(80)))
    ch.nrs(6, 3)
    ch.never_smoked()
    ch.nsaid(80, "197806", status="active")
    ch.call("chart-open", "patient-view", [])
    return ch


@case
def p40() -> Chart:
    ch = Chart(
        "p40-boundary-fusion-90-days",
        "Boundary probe: fusion exactly 90 d before T0 leaves the healing window (>= 90 d): the conservative-"
        "care pathway applies, with no PT (C7 not documented) and an ibuprofen on post-op day 10 that is "
        "post-operative analgesia, not an NSAID trial (V2-12): C4 unmet.",
    )
    ch.fusion(90)
    ch.add(condition("M54.50", onset=days_ago(80)))
    ch.nrs(6, 3)
    ch.never_smoked()
    ch.nsaid(80, "197806", status="active")
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C2,C4,C7")])
    return ch


def _revision_at(ch: Chart, fusion_days: int) -> str:
    """Complete care from 130 d before T0 (post-op day 49 or later, V2-12; PT from 125 d, C7 V2-13), ODI
    exactly 41 %, a facet block (V2-15) of exactly 50 % and confirmed pseudarthrosis: every revision
    criterion but R1 sits on or away from its threshold on the met side."""
    in_scope(ch, fusion_days=fusion_days)
    ch.full_conservative_care(130)
    ch.add(observation("97909-6", effective=days_ago(30), value=41, unit="%"))
    block_type = {"code": code_of("block-type", LOCAL), "valueCodeableConcept": code_of("facet", LOCAL)}
    ch.add(
        observation(
            "diagnostic-block-relief",
            system=LOCAL,
            effective=days_ago(40),
            value=50,
            unit="%",
            component=[block_type],
        )
    )
    ch.add(condition("M96.0", onset=days_ago(60)))
    return ch.draft_order("22612")


@case
def p41() -> Chart:
    ch = Chart(
        "p41-boundary-revision-180-days",
        "Boundary probe: fusion exactly 180 d ago (R1 met), ODI exactly 41 % (R3) and a facet block of "
        "exactly 50 % (R4): REV-MET.",
        gender="male",
    )
    revision = _revision_at(ch, 180)
    ch.call("sign-revision", "order-sign", [card("REV-MET")], drafts=[revision])
    return ch


@case
def p42() -> Chart:
    ch = Chart(
        "p42-boundary-revision-179-days",
        "Boundary probe: the same patient as p41 with the fusion 179 d ago: only R1 is unmet.",
        gender="male",
    )
    revision = _revision_at(ch, 179)
    ch.call("sign-revision", "order-sign", [card("REV-NOT-MET", "R1")], drafts=[revision])
    return ch


@case
def p43() -> Chart:
    ch = Chart(
        "p43-hw-thresholds-not-reached",
        "Threshold probes for hardware removal: lucency exactly 1.0 mm (needs > 1 mm), hardware block "
        "exactly 70 % (needs > 70 %), and a final CT concluding breakage 400 d ago (outside 365 d): "
        "HW-NOT-SUPPORTED.",
    )
    in_scope(ch, fusion_days=800)
    ch.full_conservative_care(600)
    ch.add(observation("peri-screw-lucency", system=LOCAL, effective=days_ago(50), value=1.0, unit="mm"))
    ch.add(observation("hardware-block-relief", system=LOCAL, effective=days_ago(40), value=70, unit="%"))
    ch.add(diagnostic_report(effective=days_ago(400), conclusion=["T84.216A"], text="Broken left L5 screw"))
    removal = ch.draft_order("22852")
    ch.call("sign-removal", "order-sign", [card("HW-NOT-SUPPORTED")], drafts=[removal])
    return ch


@case
def p44() -> Chart:
    ch = Chart(
        "p44-scs-met-remission-deferred-clearance",
        "SCS-MET with traps: opioid dependence in remission (F11.21) and nicotine dependence are not X4; "
        "the F17.210 smoker had cessation counselling; psych clearance 'deferred' is not 'not-cleared'; RFA "
        "is the interventional procedure.",
        gender="male",
    )
    ch.fusion(600, "22630")
    ch.pain(nrs=7)
    ch.add(condition("F17.210", onset=days_ago(50)))
    ch.add(procedure("99406", performed=days_ago(30)))
    ch.add(condition("F11.21", onset=days_ago(400)))
    ch.full_conservative_care(500)
    ch.add(procedure("64635", performed=days_ago(200)))
    ch.add(procedure("90791", performed=days_ago(200)))
    ch.add(
        observation(
            "neuromodulation-psych-clearance",
            system=LOCAL,
            effective=days_ago(190),
            value=code_of("deferred", LOCAL),
        )
    )
    scs = ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    ch.call("sign-scs", "order-sign", [card("SCS-MET")], drafts=[scs])
    return ch


@case
def p45() -> Chart:
    ch = Chart(
        "p45-scs-sud-treated-by-text-medication",
        "Active opioid use disorder treated with a current buprenorphine/naloxone (authored 150 d ago, "
        "V2-10) known only by its text (X4 met), and depression treated by psychotherapy (90837) 60 d ago "
        "(X5 met): SCS-MET.",
    )
    in_scope(ch, fusion_days=500, nrs=8)
    ch.add(condition("F11.20", onset=days_ago(300)))
    ch.add(
        medication_request(
            None, authored=days_ago(150), text="Buprenorphine 8 mg / naloxone 2 mg sublingual film"
        )
    )
    ch.add(condition("F32.A", onset=days_ago(200)))
    ch.add(procedure("90837", performed=days_ago(60)))
    ch.full_conservative_care(400)
    ch.add(procedure("64493", performed=days_ago(250)))
    ch.add(procedure("90791", performed=days_ago(100)))
    scs = ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    ch.call("sign-scs", "order-sign", [card("SCS-MET")], drafts=[scs])
    return ch


@case
def p46() -> Chart:
    ch = Chart(
        "p46-redflag-with-medication-draft-only",
        "Provisional cauda equina (counts, safety bias) and progressive weakness: RF-1, RF-2 at chart open; "
        "a draft oxycodone with gabapentin active gets only MED-SEDATING (V2-19; no procedure draft, so no "
        "RF cards); a selected non-trigger referral gets nothing.",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(condition("G83.4", verification="provisional", onset=days_ago(2)))
    ch.add(local_flag("rf-progressive-weakness", True, 2))
    ch.add(medication_request("310431", authored=days_ago(150)))
    opioid = ch.draft_medication("1049621")
    referral = ch.draft(service_request("91251008", system=SNOMED, status="draft", authored=T0_TEXT))
    both = [opioid, referral]
    ch.call("chart-open", "patient-view", [card("RF-1"), card("RF-2")])
    ch.call("select-opioid", "order-select", [card("MED-SEDATING")], drafts=both, selections=[opioid])
    ch.call("select-referral", "order-select", [], drafts=both, selections=[referral])
    ch.call("sign-both", "order-sign", [card("MED-SEDATING")], drafts=both)
    return ch


@case
def p47() -> Chart:
    ch = Chart(
        "p47-quiet-traps-medication-statement",
        "Old urinary retention (not new), fever 101 [degF] (38.3 Cel, not above redFlag.feverC 38.5) with "
        "drainage, unknown smoking status, depression in partial remission and a PHQ-9 older than 365 d: "
        "none fires; a reported oxycodone MedicationStatement with pregabalin gives MED-SEDATING (V2-19).",
    )
    in_scope(ch)
    ch.resources = [r for r in ch.resources if r["code"]["coding"][0]["code"] != "266919005"]
    ch.smoking("266927001", 20)
    ch.full_conservative_care(300)
    ch.add(condition("R33.9", onset=days_ago(200)))
    ch.add(observation("8310-5", effective=instant_ago(3), value=101.0, unit="[degF]"))
    ch.add(local_flag("rf-wound-drainage", True, 3))
    ch.add(condition("F32.4", onset=days_ago(300)))
    ch.add(observation("44261-6", effective=days_ago(400), value=16))
    ch.add(medication_statement("7804", effective=days_ago(30)))
    ch.add(medication_request("187832", authored=days_ago(90)))
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE"), card("MED-SEDATING")])
    return ch


@case
def p48() -> Chart:
    ch = Chart(
        "p48-pcs-fusion-osteomyelitis-hscrp",
        "Fusion coded in ICD-10-PCS (0SG00AJ, lumbar, V2-9) with a performedPeriod and post-fusion pain "
        "(M96.1 from 250 d ago, V2-2); lumbar osteomyelitis 5 d ago: RF-3, with hs-CRP 25 mg/L (LAB-CRP) "
        "and vitamin D 50 nmol/L (20 ng/mL, VITD-LOW); SCS fails X3 and X6 (V2-8: LAB-CRP also makes X6 "
        "not met).",
        gender="male",
    )
    ch.add(
        procedure(
            "0SG00AJ",
            system=ICD10PCS,
            period=(f"{days_ago(300)}T08:00:00Z", f"{days_ago(300)}T13:00:00Z"),
            display="Fusion of lumbar vertebral joint with interbody fusion device, posterior approach",
        )
    )
    ch.pain(onset=250)
    ch.never_smoked()
    ch.full_conservative_care(250)
    ch.add(procedure("64493", performed=days_ago(120)))
    ch.add(condition("M46.26", onset=days_ago(5)))
    ch.add(observation("30522-7", effective=days_ago(3), value=25, unit="mg/L"))
    ch.add(observation("62292-8", effective=days_ago(40), value=50, unit="nmol/L"))
    scs = ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("RF-3"), card("LAB-CRP"), card("VITD-LOW")])
    ch.call("sign-scs", "order-sign", [card("RF-3"), card("SCS-NOT-MET", "X3,X6")], drafts=[scs])
    return ch


@case
def p49() -> Chart:
    ch = Chart(
        "p49-out-stale-nrs",
        "Fusion 400 d ago and care documented, but the only pain evidence is an NRS 8 from 100 d ago "
        "(outside 90 d): out of scope.",
    )
    ch.fusion(400)
    ch.nrs(8, 100)
    ch.never_smoked()
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [])
    return ch


# Modules beside this one that add revision-2 cases with @case (imported on first build, so they can
# import this module's builders without a cycle).
CASE_MODULES = ("synthetic_v2_safety", "synthetic_v2_conservative", "synthetic_v2_surgery")


def build_cases() -> list[Json]:
    """Every case as its JSON document, ordered by case id."""
    for name in CASE_MODULES:
        if (Path(__file__).parent / f"{name}.py").exists():
            importlib.import_module(f"support.{name}")
    charts = [build() for build in CASES]
    return [chart.to_json() for chart in sorted(charts, key=lambda chart: chart.case_id)]


def write(directory: Path = PATIENTS_DIR) -> list[Path]:
    """Write one JSON file per case (and remove stale case files)."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = build_cases()
    ids = [doc["id"] for doc in documents]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate case ids")
    for stale in directory.glob("*.json"):
        if stale.stem not in ids:
            stale.unlink()
    paths = []
    for doc in documents:
        path = directory / f"{doc['id']}.json"
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    """Regenerate fixtures/patients/."""
    paths = write()
    print(f"wrote {len(paths)} cases to {PATIENTS_DIR}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    importlib.import_module("support.synthetic").main()  # one module instance, so cases register once
