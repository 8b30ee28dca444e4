"""PatientRecord indexing and the status profiles of RULES.md section 0.1 (data hygiene)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from cds_service.record import PatientRecord, make_entry, profile_test, resources_of

from support.builders import (
    ICD10,
    LOINC,
    RXNORM,
    SNOMED,
    T0,
    allergy,
    concept,
    condition,
    diagnostic_report,
    medication_request,
    medication_statement,
    observation,
    patient,
    procedure,
    service_request,
    valid,
)

GABAPENTIN = concept(RXNORM, "310431", display="gabapentin 100 MG Oral Capsule", text="Gabapentin 100 mg cap")


def test_entered_in_error_is_dropped_by_status_and_by_verification_status() -> None:
    """Entered-in-error records never count as evidence, whichever element says so."""
    record = PatientRecord.of_resources(
        [
            procedure("eie-proc", status="entered-in-error"),
            observation("eie-obs", status="entered-in-error"),
            medication_request("eie-med", GABAPENTIN, status="entered-in-error"),
            condition("eie-cond", clinical=None, verification="entered-in-error"),
            condition("kept"),
            procedure("kept"),
        ]
    )
    types = ("Condition", "Procedure", "Observation", "MedicationRequest")
    assert {type_: [e.reference for e in record.of_type(type_)] for type_ in types} == {
        "Condition": ["Condition/kept"],
        "Procedure": ["Procedure/kept"],
        "Observation": [],
        "MedicationRequest": [],
    }


def test_duplicates_by_type_and_id_are_kept_once_first_wins() -> None:
    """A prefetch and a FHIR search can return the same resource twice; it must count once."""
    first = condition("c1", "M96.1")
    second = condition("c1", "M54.16")
    record = PatientRecord.of_resources(
        [first, second, procedure("c1"), observation("o1"), observation("o1")]
    )
    assert [e.resource for e in record.of_type("Condition")] == [first]
    assert [e.reference for e in record.of_type("Procedure")] == ["Procedure/c1"]
    assert len(record.of_type("Observation")) == 1
    assert record.size() == 3


def test_duplicate_entered_in_error_counts_once_and_is_never_an_entry() -> None:
    record = PatientRecord.of_resources([procedure("p", status="entered-in-error")] * 2)
    assert record.size() == 1
    assert record.of_type("Procedure") == []


def test_patient_is_kept_apart_and_junk_is_ignored() -> None:
    """The Patient is not an indexed record; non-resources are skipped without counting."""
    record = PatientRecord.of_resources(
        [patient(), None, "x", {"id": "no-type"}, {"resourceType": 5}, procedure("p")]
    )
    assert record.size() == 1
    assert record.of_type("Patient") == []
    assert record.of_type("Encounter") == []


@pytest.mark.parametrize(
    ("resource", "expected", "end"),
    [
        (
            condition("c", onsetDateTime="2026-03-04T10:00:00Z", recordedDate="2026-05-01"),
            date(2026, 3, 4),
            None,
        ),
        (condition("c", onsetPeriod={"start": "2026-02-01", "end": "2026-02-20"}), date(2026, 2, 1), None),
        (condition("c", onsetString="childhood", recordedDate="2026-05-01"), date(2026, 5, 1), None),
        (condition("c", recordedDate="2026-05-01T08:00:00+02:00"), date(2026, 5, 1), None),
        (condition("c"), None, None),
        (condition("c", onsetDateTime="2019"), date(2019, 1, 1), None),
        (condition("c", onsetDateTime="2019-07"), date(2019, 7, 1), None),
        (
            procedure("p", performedPeriod={"start": "2026-01-10", "end": "2026-01-12T09:00:00Z"}),
            date(2026, 1, 10),
            date(2026, 1, 12),
        ),
        (procedure("p", performedPeriod={"end": "2026-01-12"}), date(2026, 1, 12), date(2026, 1, 12)),
        (procedure("p", performedDateTime="2025-12-24"), date(2025, 12, 24), None),
        (
            observation("o", effectiveDateTime="2026-10-31T23:30:00-05:00", issued="2026-11-01T04:40:00Z"),
            date(2026, 10, 31),
            None,
        ),
        (observation("o", issued="2026-10-02T07:00:00Z"), date(2026, 10, 2), None),
        (
            observation("o", effectivePeriod={"start": "2026-09-01", "end": "2026-09-03"}),
            date(2026, 9, 1),
            date(2026, 9, 3),
        ),
        (medication_request("m", GABAPENTIN, authoredOn="2026-04"), date(2026, 4, 1), None),
        (
            medication_statement(
                "m", GABAPENTIN, effectivePeriod={"start": "2026-01-01", "end": "2026-03-01"}
            ),
            date(2026, 1, 1),
            date(2026, 3, 1),
        ),
        (diagnostic_report("d", issued="2026-08-09T10:00:00Z"), date(2026, 8, 9), None),
        (
            diagnostic_report("d", effectiveDateTime="2026-08-01", issued="2026-08-09T10:00:00Z"),
            date(2026, 8, 1),
            None,
        ),
        (service_request("s", authoredOn="2026-06-06"), date(2026, 6, 6), None),
        (
            service_request("s", occurrenceDateTime="2026-06-20", authoredOn="2026-06-06"),
            date(2026, 6, 20),
            None,
        ),
        (allergy("a", recordedDate="2015"), date(2015, 1, 1), None),
    ],
)
def test_entry_date_comes_from_the_type_specific_fields(
    resource: dict[str, Any], expected: date | None, end: date | None
) -> None:
    """Windows count days from these dates, so each type must read its own fields in priority order."""
    entry = make_entry(resource)
    assert (entry.day, entry.end) == (expected, end)


def test_codes_and_text_of_a_condition() -> None:
    resource = condition("c")
    resource["code"] = {
        "coding": [
            {"system": SNOMED, "code": "213299007", "display": "Failed back surgery syndrome"},
            {"code": "FBSS"},
        ],
        "text": "Post-Laminectomy Syndrome",
    }
    entry = make_entry(valid(resource))
    assert entry.codes == {(SNOMED, "213299007"), ("", "FBSS")}
    assert entry.text == "post-laminectomy syndrome failed back surgery syndrome"
    assert entry.label == "Post-Laminectomy Syndrome"
    assert entry.reference == "Condition/c"
    assert entry.type == "Condition"


def test_medication_codes_come_from_medication_codeable_concept() -> None:
    entry = make_entry(medication_request("m", GABAPENTIN))
    assert entry.codes == {(RXNORM, "310431")}
    assert entry.text == "gabapentin 100 mg cap gabapentin 100 mg oral capsule"
    assert entry.label == "Gabapentin 100 mg cap"


def test_diagnostic_report_codes_include_conclusion_codes_and_the_report_code() -> None:
    resource = diagnostic_report(
        "d",
        conclusionCode=[concept(SNOMED, "441806004", display="Pseudarthrosis"), concept(SNOMED, "1234")],
    )
    entry = make_entry(resource)
    assert entry.codes == {(SNOMED, "441806004"), (SNOMED, "1234"), (LOINC, "24531-6")}
    assert entry.label == "Pseudarthrosis"


def test_label_falls_back_to_the_reference_without_any_text() -> None:
    entry = make_entry(procedure("p"))
    assert (entry.text, entry.label) == ("", "Procedure/p")


def _valid_until(end: date) -> dict[str, Any]:
    return {"validityPeriod": {"start": "2026-01-01", "end": end.isoformat()}}


# (resource, {profile: expected}) for every named profile of the resource's type.
PROFILE_CASES: list[tuple[str, dict[str, Any], dict[str, bool]]] = [
    ("active confirmed", condition("c"), {"usable": True, "active": True, "confirmed": True}),
    (
        "recurrence",
        condition("c", clinical="recurrence"),
        {"usable": True, "active": True, "confirmed": True},
    ),
    ("relapse", condition("c", clinical="relapse"), {"usable": True, "active": True, "confirmed": True}),
    (
        "provisional",
        condition("c", verification="provisional"),
        {"usable": True, "active": True, "confirmed": False},
    ),
    (
        "differential",
        condition("c", verification="differential"),
        {"usable": True, "active": True, "confirmed": False},
    ),
    (
        "unconfirmed",
        condition("c", verification="unconfirmed"),
        {"usable": True, "active": True, "confirmed": False},
    ),
    (
        "no verification",
        condition("c", verification=None),
        {"usable": True, "active": True, "confirmed": False},
    ),
    (
        "refuted",
        condition("c", verification="refuted"),
        {"usable": False, "active": False, "confirmed": False},
    ),
    ("resolved", condition("c", clinical="resolved"), {"usable": True, "active": False, "confirmed": False}),
    ("inactive", condition("c", clinical="inactive"), {"usable": True, "active": False, "confirmed": False}),
    (
        "remission",
        condition("c", clinical="remission"),
        {"usable": True, "active": False, "confirmed": False},
    ),
    ("no clinical", condition("c", clinical=None), {"usable": True, "active": False, "confirmed": False}),
    *[
        (f"procedure {status}", procedure("p", status=status), {"completed": status == "completed"})
        for status in ("completed", "not-done", "in-progress", "preparation", "on-hold", "stopped", "unknown")
    ],
    *[
        (
            f"medication {status}",
            medication_request("m", GABAPENTIN, status=status),
            {"trial": status in {"active", "completed", "stopped", "on-hold"}, "current": status == "active"},
        )
        for status in ("active", "completed", "stopped", "on-hold", "draft", "cancelled", "unknown")
    ],
    (
        "validity ended yesterday",
        medication_request("m", GABAPENTIN, dispenseRequest=_valid_until(T0 - timedelta(days=1))),
        {"trial": True, "current": False},
    ),
    (
        "validity ends at T0",
        medication_request("m", GABAPENTIN, dispenseRequest=_valid_until(T0)),
        {"trial": True, "current": True},
    ),
    (
        "validity ends tomorrow",
        medication_request("m", GABAPENTIN, dispenseRequest=_valid_until(T0 + timedelta(days=1))),
        {"trial": True, "current": True},
    ),
    (
        "validity with start only",
        medication_request("m", GABAPENTIN, dispenseRequest={"validityPeriod": {"start": "2020-01-01"}}),
        {"trial": True, "current": True},
    ),
    (
        "completed with open validity",
        medication_request("m", GABAPENTIN, status="completed", dispenseRequest=_valid_until(T0)),
        {"trial": True, "current": False},
    ),
    (
        "statement taken until last month",
        medication_statement("m", GABAPENTIN, effectivePeriod={"start": "2026-01-01", "end": "2026-10-01"}),
        {"trial": True, "current": False},
    ),
    (
        "statement ongoing",
        medication_statement("m", GABAPENTIN, effectivePeriod={"start": "2026-01-01"}),
        {"trial": True, "current": True},
    ),
    (
        "statement not taken",
        medication_statement("m", GABAPENTIN, status="not-taken"),
        {"trial": False, "current": False},
    ),
    *[
        (
            f"observation {status}",
            observation("o", status=status),
            {"final": status in {"final", "amended", "corrected"}},
        )
        for status in ("final", "amended", "corrected", "preliminary", "registered", "cancelled", "unknown")
    ],
    *[
        (
            f"report {status}",
            diagnostic_report("d", status=status),
            {"final": status in {"final", "amended", "corrected", "appended"}},
        )
        for status in ("final", "amended", "corrected", "appended", "partial", "preliminary", "registered")
    ],
    *[
        (
            f"service request {status}",
            service_request("s", status=status),
            {"recorded": status in {"active", "completed"}},
        )
        for status in ("active", "completed", "draft", "revoked", "on-hold")
    ],
    ("allergy active", allergy("a"), {"active": True}),
    ("allergy without clinical status", allergy("a", clinical=None), {"active": True}),
    ("allergy inactive", allergy("a", clinical="inactive"), {"active": False}),
    ("allergy resolved", allergy("a", clinical="resolved"), {"active": False}),
    ("allergy refuted", allergy("a", clinical=None, verification="refuted"), {"active": False}),
]


@pytest.mark.parametrize(
    ("resource", "expected"), [case[1:] for case in PROFILE_CASES], ids=[c[0] for c in PROFILE_CASES]
)
def test_status_profiles(resource: dict[str, Any], expected: dict[str, bool]) -> None:
    """Each profile is the evidence rule of RULES.md 0.1 for its type, judged at T0."""
    entry = make_entry(resource)
    results = {}
    for profile in expected:
        test = profile_test(entry.type, profile)
        assert test is not None
        results[profile] = test(entry, T0)
    assert results == expected


DEFAULTS = {
    "Condition": "usable",
    "Procedure": "completed",
    "MedicationRequest": "trial",
    "MedicationStatement": "trial",
    "Observation": "final",
    "DiagnosticReport": "final",
    "ServiceRequest": "recorded",
    "AllergyIntolerance": "active",
}


@pytest.mark.parametrize(
    ("resource", "expected"), [case[1:] for case in PROFILE_CASES], ids=[c[0] for c in PROFILE_CASES]
)
def test_default_profile_is_the_first_listed_in_the_docs(
    resource: dict[str, Any], expected: dict[str, bool]
) -> None:
    entry = make_entry(resource)
    default = profile_test(entry.type, None)
    assert default is not None
    assert default(entry, T0) is expected[DEFAULTS[entry.type]]


def test_profile_test_for_unknown_names() -> None:
    """An unknown profile is a rule error (None); a type without profiles accepts everything by default."""
    assert profile_test("Condition", "current") is None
    assert profile_test("Encounter", "final") is None
    anything = profile_test("Location", None)
    assert anything is not None
    assert anything(make_entry({"resourceType": "Location", "id": "l", "status": "inactive"}), T0) is True


def test_an_encounter_is_ongoing_while_in_progress_or_on_leave() -> None:
    """A hospice stay counts while it lasts (V2-11); a finished or cancelled one does not."""
    ongoing = profile_test("Encounter", None)
    assert ongoing is not None
    for status, expected in (
        ("in-progress", True),
        ("onleave", True),
        ("finished", False),
        ("cancelled", False),
    ):
        assert ongoing(make_entry({"resourceType": "Encounter", "id": "e", "status": status}), T0) is expected


def test_resources_of_bundle_single_resource_and_junk() -> None:
    first, second = condition("c1"), procedure("p1")
    bundle = valid(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [
                {"resource": first},
                {"fullUrl": "urn:uuid:0c1e4b8e-0000-4000-8000-000000000001"},
                {"resource": second},
            ],
        }
    )
    assert resources_of(bundle) == [first, second]
    assert resources_of({"resourceType": "Bundle", "type": "searchset"}) == []
    assert resources_of({"resourceType": "Bundle", "entry": [None, 5, {"resource": "x"}]}) == []
    assert resources_of(first) == [first]
    for junk in (None, [first], "Condition/c1", 5):
        assert resources_of(junk) == []


def test_long_codes_cost_the_record_their_length_not_its_square() -> None:
    """The attack: twelve Conditions with 20,000-character ICD-10 codes (a 450 KB body) once took a worker
    past 900 MB, because every prefix of every code was indexed. Only the prefix lengths asked for are."""
    import tracemalloc

    long_codes = [f"M96.{index}" + "9" * 20_000 for index in range(12)]
    record = PatientRecord.of_resources(
        [
            *(condition(f"long-{index}", code) for index, code in enumerate(long_codes)),
            *(condition(f"short-{index}", "M54.5") for index in range(20)),
        ]
    )
    tracemalloc.start()
    try:
        found = record.entries(record.coded("Condition", frozenset(), ((ICD10, "M96"),)))
        again = record.entries(record.coded("Condition", frozenset(), ((ICD10, "M96.1"),)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [entry.reference for entry in found] == [f"Condition/long-{index}" for index in range(12)]
    assert [entry.reference for entry in again] == [
        "Condition/long-1",
        "Condition/long-10",
        "Condition/long-11",
    ]
    assert peak < 2_000_000, f"indexing the long codes took {peak / 1e6:.0f} MB"
