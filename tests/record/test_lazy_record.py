"""The record pays only for what the rules read: a type is indexed when first read, a resource is looked at
closely when a selection matches it, and malformed data is refused then, at its origin."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.errors import DataUnavailable, InvalidRequest
from cds_service.record import Entry, Origin, PatientRecord

from support.builders import ICD10, condition, observation, procedure

FUSION_CODE = frozenset({(ICD10, "M96.1")})


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def fusions(record: PatientRecord) -> list[Entry]:
    """What a selection by the fusion code reads: the index lookup, then entries for what it finds."""
    return record.entries(record.coded("Condition", FUSION_CODE))


def conditions_record(*resources: dict[str, Any], fetched: bool = False) -> PatientRecord:
    return PatientRecord.build([(Origin("conditions", fetched=fetched), bundle(*resources))])


def test_a_type_no_rule_reads_is_never_checked() -> None:
    broken = observation("o1") | {"code": "1988-5"}  # a string where a CodeableConcept belongs
    record = PatientRecord.build(
        [(Origin("observations"), bundle(broken)), (Origin("conditions"), bundle(condition("c1")))]
    )
    assert [entry.reference for entry in record.of_type("Condition")] == ["Condition/c1"]
    with pytest.raises(InvalidRequest) as refused:
        record.of_type("Observation")
    assert [issue.location for issue in refused.value.issues] == [
        "prefetch.observations.entry[0].resource.code"
    ]


def test_what_a_resource_is_is_checked_for_every_resource_of_a_type_read() -> None:
    """The code index reads every resource's code, so a malformed code is refused even if it matches
    nothing."""
    record = conditions_record(condition("c1"), condition("c2") | {"code": {"coding": "M96.1"}})
    with pytest.raises(InvalidRequest) as refused:
        fusions(record)
    assert [issue.location for issue in refused.value.issues] == [
        "prefetch.conditions.entry[1].resource.code.coding"
    ]


def test_the_rest_of_a_resource_is_checked_only_when_a_selection_matches_it() -> None:
    unrelated = condition("other", "I10") | {"onsetDateTime": {"value": "2026-01-01"}}
    record = conditions_record(unrelated, condition("fusion"))
    assert [entry.reference for entry in fusions(record)] == ["Condition/fusion"]
    related = condition("fusion2") | {"onsetDateTime": {"value": "2026-01-01"}}
    record = conditions_record(unrelated, related)
    with pytest.raises(InvalidRequest) as refused:
        fusions(record)
    assert [issue.location for issue in refused.value.issues] == [
        "prefetch.conditions.entry[1].resource.onsetDateTime"
    ]


def test_malformed_data_from_the_fhir_server_names_the_key() -> None:
    record = conditions_record(condition("c1") | {"status": ["active"]}, fetched=True)
    with pytest.raises(DataUnavailable) as refused:
        record.of_type("Condition")
    (issue,) = refused.value.issues
    assert issue.location == "prefetch.conditions"
    assert "malformed data (response.entry[0].resource.status: must be a string)" in issue.diagnostics


def test_a_single_resource_value_is_located_at_its_key() -> None:
    record = PatientRecord.build([(Origin("fusion"), procedure("p1") | {"status": 1})])
    with pytest.raises(InvalidRequest) as refused:
        record.of_type("Procedure")
    assert [issue.location for issue in refused.value.issues] == ["prefetch.fusion.status"]


def test_entries_are_built_once_and_found_by_reference_only_once_selected() -> None:
    record = conditions_record(condition("other", "I10"), condition("fusion"))
    assert record.by_reference("Condition/fusion") is None  # not read yet
    first = fusions(record)
    assert fusions(record)[0] is first[0]
    assert record.by_reference("Condition/fusion") is first[0]
    assert record.by_reference("Condition/other") is None
    assert [entry.reference for entry in record.of_type("Condition")] == [
        "Condition/other",
        "Condition/fusion",
    ]


def test_an_id_that_is_not_a_string_is_refused_at_once() -> None:
    """The id tells duplicates apart when the record is built, so it is checked then, whatever is read."""
    with pytest.raises(InvalidRequest) as refused:
        PatientRecord.build(
            [(Origin("observations"), bundle(observation("o1"), observation("o2") | {"id": ["x"]}))]
        )
    assert [issue.location for issue in refused.value.issues] == [
        "prefetch.observations.entry[1].resource.id"
    ]
