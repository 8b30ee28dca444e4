"""Moving a synthetic patient in time (cds_service/cli/rebase.py): which values move, how, and that every
fixture moved stays valid FHIR R4."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.cli.cases import Case, load_cases
from cds_service.cli.rebase import NotFhir, days_until, rebase_case, shift_resource, shift_value

CASES = load_cases()


@pytest.mark.parametrize(
    ("written", "days", "moved"),
    [
        ("2026-11-01", 30, "2026-12-01"),  # a date stays a date
        ("2026-11-01T12:00:00Z", 30, "2026-12-01T12:00:00Z"),  # time of day and Z kept
        ("2026-10-22T09:00:00.125+02:00", 10, "2026-11-01T09:00:00.125+02:00"),  # fractions and offset kept
        ("2026-12-31T23:59:59-05:00", 1, "2027-01-01T23:59:59-05:00"),
        ("2028-02-28", 1, "2028-02-29"),  # leap day
        ("2026-03-01", -1, "2026-02-28"),  # backwards too
        ("2026-04", 45, "2026-05"),  # YYYY-MM moves from its first day
        ("2026", 400, "2027"),
        ("2026-11-01", 0, "2026-11-01"),
        ("not a date", 30, "not a date"),  # unparseable: left as it is
        ("9999-12-31", 1, "9999-12-31"),  # out of range: left as it is
    ],
)
def test_a_value_moves_by_whole_days_at_its_own_precision(written: str, days: int, moved: str):
    assert shift_value(written, days) == moved


def observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "meta": {"lastUpdated": "2026-11-01T10:00:00Z", "tag": [{"code": "2026"}]},
        "identifier": [{"value": "2026-11-01"}],  # a string that looks like a date is not one
        "status": "final",
        "code": {"coding": [{"system": "http://example.org", "code": "1962"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-10-22",
        "_effectiveDateTime": {"extension": [{"url": "http://example.org/x", "valueDate": "2026-10-21"}]},
        "issued": "2026-10-22T09:00:00Z",
        "valuePeriod": {"start": "2026-01-05", "end": "2026-02-05T08:30:00+01:00"},
        "note": [{"time": "2026-10-23T08:00:00Z", "text": "written 2026-10-23"}],
        "extension": [{"url": "http://example.org/when", "valueDateTime": "2026-06-01"}],
        "component": [{"code": {"text": "c"}, "valueDateTime": "2026-07-01"}],
        "contained": [
            {
                "resourceType": "MedicationRequest",
                "id": "m1",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"text": "m"},
                "subject": {"reference": "Patient/p1"},
                "authoredOn": "2026-09-01",
                "dosageInstruction": [
                    {
                        "timing": {
                            "event": ["2026-09-02", "2026-09-03"],
                            "repeat": {"boundsPeriod": {"start": "2026-09-02"}},
                        }
                    }
                ],
            }
        ],
    }


def test_every_element_typed_as_a_date_moves_and_nothing_else():
    written = observation()
    moved = shift_resource(written, 10)
    assert written == observation(), "the input is not changed"
    assert moved["meta"] == {"lastUpdated": "2026-11-11T10:00:00Z", "tag": [{"code": "2026"}]}
    assert moved["identifier"] == [{"value": "2026-11-01"}]
    assert moved["code"]["coding"][0]["code"] == "1962"
    assert moved["effectiveDateTime"] == "2026-11-01"
    assert moved["_effectiveDateTime"]["extension"][0]["valueDate"] == "2026-10-31"
    assert moved["issued"] == "2026-11-01T09:00:00Z"
    assert moved["valuePeriod"] == {"start": "2026-01-15", "end": "2026-02-15T08:30:00+01:00"}
    assert moved["note"] == [{"time": "2026-11-02T08:00:00Z", "text": "written 2026-10-23"}]
    assert moved["extension"][0]["valueDateTime"] == "2026-06-11"
    assert moved["component"][0]["valueDateTime"] == "2026-07-11"
    contained = moved["contained"][0]
    assert contained["authoredOn"] == "2026-09-11"
    timing = contained["dosageInstruction"][0]["timing"]
    assert timing == {
        "event": ["2026-09-12", "2026-09-13"],
        "repeat": {"boundsPeriod": {"start": "2026-09-12"}},
    }
    get_fhir_model_class("Observation").model_validate(moved)


def test_a_bundle_moves_the_resources_of_its_entries():
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": observation()}]}
    assert shift_resource(bundle, 10)["entry"][0]["resource"] == shift_resource(observation(), 10)


def test_a_birth_date_moves_with_the_record_so_the_age_stays():
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1962-04-17", "deceasedBoolean": False}
    assert shift_resource(patient, 30) == {**patient, "birthDate": "1962-05-17"}


def test_a_resource_of_no_r4_type_is_refused_not_left_unmoved():
    with pytest.raises(NotFhir, match="MedicationOrder"):
        shift_resource({"resourceType": "MedicationOrder", "id": "m1", "dateWritten": "2026-10-01"}, 1)


def test_a_case_moves_its_t0_its_record_and_its_draft_orders():
    case = next(case for case in CASES if any(call["hook"] == "order-sign" for call in case.calls))
    original = copy.deepcopy(case)
    moved = rebase_case(case, date(2026, 12, 1))
    assert moved.t0 == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # T0's time of day kept
    assert case == original
    assert moved.resources == [shift_resource(r, 30) for r in case.resources]
    sign = next(call for call in moved.calls if call["hook"] == "order-sign")
    draft = sign["context"]["draftOrders"]["entry"][0]["resource"]
    assert draft["authoredOn"] == "2026-12-01T12:00:00Z"
    assert rebase_case(case, case.t0.date()) is case


def test_the_shift_counts_calendar_days_from_t0_in_utc():
    t0 = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    assert days_until(t0, date(2026, 11, 2)) == 1
    assert days_until(t0, date(2025, 11, 1)) == -365


def moved_values(written: Any, moved: Any) -> int:
    if isinstance(written, dict):
        return sum(moved_values(value, moved[key]) for key, value in written.items())
    if isinstance(written, list):
        return sum(moved_values(a, b) for a, b in zip(written, moved, strict=True))
    return int(written != moved)


@pytest.mark.parametrize("days", [31, 400, -1000])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_every_fixture_moved_is_still_valid_fhir_r4(case: Case, days: int):
    moved = rebase_case(case, case.t0.date() + timedelta(days=days))
    assert moved_values(case.resources, moved.resources) > 0
    for resource in moved.resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for call in moved.calls:
        if "draftOrders" in call["context"]:
            get_fhir_model_class("Bundle").model_validate(call["context"]["draftOrders"])
