"""The FHIR-aware operators rule authors use (docs/rules.md), run against a small patient record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.logic import LogicError
from cds_service.plans.cards import duration
from cds_service.plans.engine import clinical_engine
from cds_service.plans.evaluation import Evaluation, activated
from cds_service.plans.model import Fact
from cds_service.plans.vocabulary import Vocabulary

from support.builders import (
    CPT,
    ICD10,
    LOINC,
    SNOMED,
    T0,
    codes,
    compile_for,
    concept,
    condition,
    evaluation,
    is_a,
    observation,
    procedure,
    quantity,
    refs,
    run,
    service_request,
    valueset,
)

VALUESETS = {
    "Fusion": valueset("Fusion", include=[codes(CPT, "22612", "22630")]),
    "Hardware": valueset("Hardware", include=[codes(ICD10, "M96.1"), is_a(ICD10, "T84.216")]),
    "Crp": valueset("Crp", include=[codes(LOINC, "1988-5")]),
    "Smoker": valueset("Smoker", include=[codes(SNOMED, "77176002", "449868002")]),
    "LumbarMri": valueset("LumbarMri", include=[codes(CPT, "72148")]),
}


def day(offset: int) -> str:
    """The ISO date `offset` days before T0."""
    return (T0 - timedelta(days=offset)).isoformat()


RECORD = [
    condition("c-active", "T84.216A"),
    condition("c-resolved", "M96.1", clinical="resolved"),
    condition("c-refuted", "T84.216D", verification="refuted"),
    condition("c-other", "M54.16", recordedDate="2026-02-02"),
    procedure("f2", "22630", performedDateTime="2025-06-01"),
    procedure("other", "64483", performedDateTime="2025-07-01"),
    procedure("f1", "22612", performedDateTime="2025-01-10"),
    procedure("f-not-done", "22612", status="not-done"),
    observation("crp-31", effectiveDateTime=day(31), valueQuantity=quantity(30, "mg/L")),
    observation("crp-today", effectiveDateTime=day(0), valueQuantity=quantity(2.5, "mg/dL")),
    observation("crp-30", effectiveDateTime=day(30), valueQuantity=quantity(12, "mg/L")),
    observation("crp-undated", valueQuantity=quantity(99, "mg/L")),
    observation("crp-prelim", status="preliminary", effectiveDateTime=day(1)),
]

DRAFTS = [
    service_request("draft-mri", "72148", status="draft"),
    service_request("draft-pt", "97110", status="draft"),
]


def record_evaluation(**overrides: Any) -> Evaluation:
    arguments: dict[str, Any] = {"valuesets": VALUESETS, "drafts": DRAFTS, "params": {"window": 30}}
    return evaluation(RECORD, **(arguments | overrides))


CRP = {"select": ["Observation", "Crp"]}
FUSIONS = {"select": ["Procedure", "Fusion"]}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"select": ["Condition"]}, ["Condition/c-active", "Condition/c-resolved", "Condition/c-other"]),
        ({"select": ["Condition", "Hardware"]}, ["Condition/c-active", "Condition/c-resolved"]),
        ({"select": ["Condition", "Hardware", "usable"]}, ["Condition/c-active", "Condition/c-resolved"]),
        ({"select": ["Condition", "Hardware", "active"]}, ["Condition/c-active"]),
        ({"select": ["Condition", None, "active"]}, ["Condition/c-active", "Condition/c-other"]),
        (FUSIONS, ["Procedure/f2", "Procedure/f1"]),
        ({"select": ["Procedure"]}, ["Procedure/f2", "Procedure/other", "Procedure/f1"]),
        (
            CRP,
            ["Observation/crp-31", "Observation/crp-today", "Observation/crp-30", "Observation/crp-undated"],
        ),
        ({"select": ["MedicationRequest"]}, []),
    ],
)
def test_select_by_type_value_set_and_profile(rule: Any, expected: list[str]) -> None:
    """Selections keep record order and apply the type's default profile when none is named."""
    assert refs(run(record_evaluation(), rule)) == expected


def test_select_is_memoised_per_evaluation() -> None:
    result = record_evaluation()
    assert run(result, FUSIONS) is run(result, FUSIONS)


@pytest.mark.parametrize(
    ("rule", "path", "reason"),
    [
        ({"select": ["Condition", "Hardwear"]}, "$.select", "unknown value set 'Hardwear'"),
        (
            {"select": ["Condition", None, "current"]},
            "$.select",
            "unknown status profile 'current' for Condition",
        ),
        (
            {"select": ["Encounter", None, "final"]},
            "$.select",
            "unknown status profile 'final' for Encounter",
        ),
        ({"select": [{"var": "type"}]}, "$.select", "a resource type must be a constant string"),
        ({"and": [True, {"fact": "fusionCuont"}]}, "$.and[1].fact", "unknown fact 'fusionCuont'"),
        ({"param": "windw"}, "$.param", "unknown parameter 'windw'"),
        (
            {"criterion": "H9"},
            "$.criterion",
            "unknown criterion 'H9' (criteria are declared on the PlanDefinition)",
        ),
        ({"drafts": "Mri"}, "$.drafts", "unknown value set 'Mri'"),
        ({"code_in": [{"draft": []}, None]}, "$.code_in", "code_in needs a value set"),
        ({"code_in": [{"draft": []}, "Smokr"]}, "$.code_in", "unknown value set 'Smokr'"),
    ],
)
def test_unknown_names_are_rejected_at_compile_time(rule: Any, path: str, reason: str) -> None:
    """A typo must fail `cds-service validate` with its path, not evaluate to nothing for a patient."""
    vocabulary = Vocabulary(
        facts={"fusionCount"}, valuesets=set(VALUESETS), params={"window"}, criteria={"H1"}
    )
    with pytest.raises(LogicError) as raised:
        clinical_engine(vocabulary).compile(rule)  # no evaluation is active: nothing runs
    assert (raised.value.path, raised.value.reason) == (path, reason)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (30, ["Observation/crp-today", "Observation/crp-30"]),
        (31, ["Observation/crp-31", "Observation/crp-today", "Observation/crp-30"]),
        (29, ["Observation/crp-today"]),
        (0, ["Observation/crp-today"]),
    ],
)
def test_within_days_includes_exactly_n_days_before_t0(days: int, expected: list[str]) -> None:
    assert refs(run(record_evaluation(), {"within_days": [CRP, days]})) == expected


def test_within_days_takes_a_parameter_and_is_unknown_without_input() -> None:
    result = record_evaluation()
    assert refs(run(result, {"within_days": [CRP, {"param": "window"}]})) == [
        "Observation/crp-today",
        "Observation/crp-30",
    ]
    assert run(result, {"within_days": [None, 30]}) is None
    assert run(result, {"within_days": [CRP, None]}) is None
    assert run(result, {"within_days": [CRP, "30"]}) is None


def test_after_is_strictly_after_a_date_or_a_resource() -> None:
    result = record_evaluation()
    assert refs(run(result, {"after": [CRP, day(31)]})) == ["Observation/crp-today", "Observation/crp-30"]
    assert refs(run(result, {"after": [CRP, f"{day(31)}T00:00:00Z"]})) == [
        "Observation/crp-today",
        "Observation/crp-30",
    ]
    assert refs(run(result, {"after": [FUSIONS, {"earliest": FUSIONS}]})) == ["Procedure/f2"]
    assert run(result, {"after": [CRP, None]}) is None
    assert run(result, {"after": [None, day(31)]}) is None


def test_latest_and_earliest_ignore_undated_records() -> None:
    result = record_evaluation()
    assert refs(run(result, {"latest": CRP})) == ["Observation/crp-today"]
    assert refs(run(result, {"earliest": CRP})) == ["Observation/crp-31"]
    assert run(result, {"latest": [[]]}) is None
    assert run(result, {"earliest": None}) is None
    undated_only = evaluation([observation("o")], valuesets=VALUESETS)
    assert run(undated_only, {"latest": CRP}) is None


def _same_day(first: dict[str, Any], second: dict[str, Any]) -> Evaluation:
    return evaluation(
        [
            observation("a", valueQuantity=quantity(1, "mg/L"), **first),
            observation("b", valueQuantity=quantity(2, "mg/L"), **second),
        ],
        valuesets=VALUESETS,
    )


def test_latest_breaks_a_date_tie_by_the_latest_issued() -> None:
    """RULES.md 0.1: latest value wins; on a tie of effective dates the maximum `issued`."""
    result = _same_day(
        {"effectiveDateTime": day(3), "issued": f"{day(3)}T10:00:00Z"},
        {"effectiveDateTime": day(3), "issued": f"{day(2)}T15:00:00Z"},
    )
    assert run(result, {"latest": CRP}).reference == "Observation/b"  # not merely the first listed
    assert run(result, {"value": {"latest": CRP}}) == 2


def test_latest_compares_issued_as_instants() -> None:
    """10:00+02:00 is 08:00Z, which is earlier than 09:00Z."""
    result = _same_day(
        {"effectiveDateTime": day(3), "issued": f"{day(3)}T10:00:00+02:00"},
        {"effectiveDateTime": day(3), "issued": f"{day(3)}T09:00:00Z"},
    )
    assert run(result, {"latest": CRP}).reference == "Observation/b"


def test_latest_compares_effective_times_before_issued() -> None:
    """RULES.md 0.1: pick the maximum effective[x]; `issued` only breaks a tie of effective[x]."""
    result = _same_day(
        {"effectiveDateTime": f"{day(3)}T08:00:00Z", "issued": f"{day(2)}T09:00:00Z"},
        {"effectiveDateTime": f"{day(3)}T20:00:00Z", "issued": f"{day(3)}T21:00:00Z"},
    )
    assert run(result, {"latest": CRP}).reference == "Observation/b"


def test_date_days_since_and_days_between() -> None:
    result = record_evaluation()
    assert run(result, {"date": {"latest": CRP}}) == T0.isoformat()
    assert run(result, {"date": "2026-05-03T10:00:00Z"}) == "2026-05-03"
    assert run(result, {"date": None}) is None
    assert run(result, {"date": "soon"}) is None
    assert run(result, {"date": {"select": ["Observation"]}}) is None
    assert run(result, {"days_since": {"earliest": CRP}}) == 31
    assert run(result, {"days_since": {"latest": CRP}}) == 0
    assert run(result, {"days_since": day(10)}) == 10
    assert run(result, {"days_since": None}) is None
    assert run(result, {"days_between": ["2026-01-01", "2026-03-01"]}) == 59
    assert run(result, {"days_between": ["2026-03-01", "2026-01-01"]}) == -59
    assert run(result, {"days_between": [{"earliest": FUSIONS}, {"latest": FUSIONS}]}) == 142
    assert run(result, {"days_between": [None, "2026-03-01"]}) is None


def test_count() -> None:
    result = record_evaluation()
    assert run(result, {"count": FUSIONS}) == 2
    assert run(result, {"count": [[]]}) == 0
    assert run(result, {"count": None}) is None


def test_span_days_includes_period_ends() -> None:
    episodes = [
        procedure("p1", "97110", performedPeriod={"start": "2026-01-01", "end": "2026-01-10"}),
        procedure("p2", "97110", performedDateTime="2026-01-05"),
        procedure("p3", "97110", performedPeriod={"start": "2026-02-01", "end": "2026-02-03"}),
    ]
    assert run(evaluation(episodes[:2]), {"span_days": {"select": ["Procedure"]}}) == 9
    assert run(evaluation(episodes), {"span_days": {"select": ["Procedure"]}}) == 33
    assert run(evaluation([procedure("p")]), {"span_days": {"select": ["Procedure"]}}) is None
    assert run(evaluation(), {"span_days": None}) is None


@pytest.mark.parametrize(
    ("fields", "unit", "expected"),
    [
        ({"valueQuantity": quantity(2.5, "mg/dL")}, "mg/L", 25.0),
        ({"valueQuantity": quantity(2.5, "mg/dL")}, None, 2.5),
        ({"valueQuantity": quantity(12, "mg/L")}, "mg/L", 12),
        ({"valueQuantity": {"value": 2.5, "unit": "mg/dL"}}, "mg/L", 25.0),
        ({"valueQuantity": quantity(98.6, "[degF]")}, "Cel", pytest.approx(37.0)),
        ({"valueQuantity": quantity(37, "Cel")}, "[degF]", pytest.approx(98.6)),
        ({"valueQuantity": quantity(45, "%")}, "mg/L", None),
        ({"valueQuantity": quantity(12, "mg/L")}, "%", None),
        ({"valueQuantity": quantity(3, "mmol/L")}, "mg/L", None),
        ({"valueInteger": 7}, None, 7),
        ({"valueInteger": 7}, "{score}", 7),
        ({"valueBoolean": False}, None, False),
        ({"valueString": "positive"}, None, "positive"),
        ({"valueCodeableConcept": concept(SNOMED, "77176002", display="Smoker")}, None, "77176002"),
        ({}, None, None),
    ],
)
def test_value_of_an_observation(fields: dict[str, Any], unit: str | None, expected: Any) -> None:
    """Thresholds are in one unit; a value that cannot be converted must be unknown, not compared raw."""
    result = evaluation([observation("o", effectiveDateTime=day(1), **fields)])
    latest = {"latest": {"select": ["Observation"]}}
    assert run(result, {"value": [latest] if unit is None else [latest, unit]}) == expected


def test_value_of_anything_but_a_resource_is_unknown() -> None:
    result = record_evaluation()
    assert run(result, {"value": [None, "mg/L"]}) is None
    assert run(result, {"value": [{"select": ["Observation", "Crp"]}, "mg/L"]}) is None


SMOKING = "72166-2"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("77176002", True), ("449868002", True), ("8517006", False)],
)
def test_code_in_reads_an_observation_coded_answer(answer: str, expected: bool) -> None:
    """For an Observation the question is its answer, not its LOINC code."""
    status = observation("s", SMOKING, effectiveDateTime=day(5), valueCodeableConcept=concept(SNOMED, answer))
    result = evaluation([status], valuesets=VALUESETS)
    latest = {"latest": {"select": ["Observation"]}}
    assert run(result, {"code_in": [latest, "Smoker"]}) is expected
    assert run(result, {"code_in": [{"value": latest}, "Smoker"]}) is expected


def test_code_in_answer_system_must_match() -> None:
    answer = {"coding": [{"system": ICD10, "code": "77176002"}]}
    status = observation("s", SMOKING, effectiveDateTime=day(5), valueCodeableConcept=answer)
    result = evaluation([status], valuesets=VALUESETS)
    assert run(result, {"code_in": [{"latest": {"select": ["Observation"]}}, "Smoker"]}) is False


def test_code_in_for_other_resources_bare_codes_and_unknowns() -> None:
    result = record_evaluation()
    assert run(result, {"code_in": [{"latest": {"select": ["Condition"]}}, "Hardware"]}) is False
    assert run(result, {"code_in": [{"earliest": FUSIONS}, "Fusion"]}) is True
    uncoded_answer = {"latest": CRP}
    assert run(result, {"code_in": [uncoded_answer, "Crp"]}) is True
    assert run(result, {"code_in": ["T84.216S", "Hardware"]}) is True
    assert run(result, {"code_in": ["T84.21", "Hardware"]}) is False
    assert run(result, {"code_in": [None, "Hardware"]}) is None
    assert run(result, {"code_in": [42, "Hardware"]}) is False


def test_drafts_and_the_draft_in_focus() -> None:
    """Drafts are hook inputs, never record evidence: they are reachable only through these operators."""
    result = record_evaluation()
    assert refs(run(result, {"drafts": []})) == ["ServiceRequest/draft-mri", "ServiceRequest/draft-pt"]
    assert refs(run(result, {"drafts": "LumbarMri"})) == ["ServiceRequest/draft-mri"]
    assert run(result, {"select": ["ServiceRequest"]}) == []
    assert run(result, {"draft": []}) is None
    result.focus(result.drafts[1], result.criteria)
    assert run(result, {"draft": []}) is result.drafts[1]
    assert run(result, {"code_in": [{"draft": []}, "LumbarMri"]}) is False


def counting(evaluation_: Evaluation, name: str) -> list[int]:
    """Wrap a fact so that the test can see how often it is computed."""
    calls = [0]
    inner = evaluation_.facts[name].compiled

    def compiled(data: Any) -> Any:
        calls[0] += 1
        return inner(data)

    evaluation_.facts[name] = Fact(name, "counted", compiled)
    return calls


def test_a_fact_is_computed_once_per_evaluation() -> None:
    """Facts are shared by many rules and cards; each must cost one computation per request."""
    result = record_evaluation(facts={"fusions": FUSIONS, "fusionCount": {"count": {"fact": "fusions"}}})
    calls = counting(result, "fusions")
    assert run(result, {"count": {"fact": "fusions"}}) == 2
    assert run(result, {"fact": "fusionCount"}) == 2
    assert refs(run(result, {"latest": {"fact": "fusions"}})) == ["Procedure/f2"]
    assert calls == [1]
    again = record_evaluation(facts={"fusions": FUSIONS, "fusionCount": {"count": {"fact": "fusions"}}})
    fresh = counting(again, "fusions")
    run(again, {"fact": "fusionCount"})
    assert fresh == [1]  # a new evaluation (request) computes it again


def test_draft_dependent_facts_are_recomputed_after_focus() -> None:
    result = record_evaluation(
        facts={"draftIsMri": {"code_in": [{"draft": []}, "LumbarMri"]}, "fusions": FUSIONS},
        draft_dependent={"draftIsMri"},
    )
    draft_calls = counting(result, "draftIsMri")
    record_calls = counting(result, "fusions")
    mri, physio = result.drafts
    answers = []
    for draft in (mri, mri, physio, mri):
        result.focus(draft, result.criteria)
        answers.append(run(result, {"fact": "draftIsMri"}))
        answers.append(run(result, {"fact": "draftIsMri"}))
        run(result, {"fact": "fusions"})
    assert answers == [True, True, True, True, False, False, True, True]
    assert draft_calls == [3]  # refocusing the same draft keeps the memo
    assert record_calls == [1]


def assess(result: Evaluation, code: str) -> Any:
    (criterion,) = (criterion for criterion in result.criteria if criterion.code == code)
    with activated(result):
        return result.assess(criterion)


def test_evidence_propagates_from_selected_records_through_facts() -> None:
    """The checklist cites the records a criterion rests on, even when it only reads a count."""
    result = record_evaluation(
        facts={"fusions": FUSIONS, "fusionCount": {"count": {"fact": "fusions"}}},
        criteria=[
            ("F1", {">=": [{"fact": "fusionCount"}, 1]}, None),
            ("F2", {"latest": {"fact": "fusions"}}, None),
        ],
    )
    outcome, required = assess(result, "F1")
    assert (outcome.value, required) == (True, True)
    assert outcome.evidence == {"Procedure/f1", "Procedure/f2"}
    assert outcome.missing == frozenset()
    latest, _ = assess(result, "F2")
    assert (latest.value, latest.evidence) == (True, {"Procedure/f2"})  # records in the value come first


def test_measure_reports_records_of_the_value_itself() -> None:
    result = record_evaluation()
    with activated(result):
        outcome = result.measure(compile_for(result, {"within_days": [CRP, 30]}))
    assert outcome.evidence == {"Observation/crp-today", "Observation/crp-30"}
    assert outcome.missing == frozenset()


def test_missing_names_the_root_unknown_facts() -> None:
    """ "Not documented" must say which data is absent, not every fact derived from it."""
    result = evaluation(
        [observation("pain", "72514-3", effectiveDateTime=day(2), valueInteger=6)],
        valuesets=VALUESETS,
        facts={
            "lastCrp": {"latest": CRP},
            "crpMgL": {"value": [{"fact": "lastCrp"}, "mg/L"]},
            "lastPain": {"latest": {"select": ["Observation", None]}},
            "pain": {"value": {"fact": "lastPain"}},
            "esr": {"value": {"latest": {"select": ["Observation", "Fusion"]}}},
        },
        criteria=[
            ("LAB", {"and": [{"<=": [{"fact": "crpMgL"}, 10]}, {"<=": [{"fact": "esr"}, 20]}]}, None),
            ("PAIN", {">=": [{"fact": "pain"}, 5]}, None),
        ],
    )
    lab, _ = assess(result, "LAB")
    assert (lab.value, lab.missing, lab.evidence) == (None, {"lastCrp", "esr"}, frozenset())
    pain, _ = assess(result, "PAIN")
    assert (pain.value, pain.missing, pain.evidence) == (True, frozenset(), {"Observation/pain"})
    with activated(result):
        assert result.measure(compile_for(result, {"fact": "crpMgL"})).missing == {"lastCrp"}


def test_value_without_a_unit_is_not_convertible() -> None:
    """docs/rules.md: quantities are converted to the unit asked for, "null if not convertible"."""
    result = evaluation([observation("o", effectiveDateTime=day(1), valueQuantity={"value": 2.5})])
    assert run(result, {"value": [{"latest": {"select": ["Observation"]}}, "mg/L"]}) is None


@pytest.mark.parametrize(
    ("days", "text"),
    [
        (365, "12 months"),
        (180, "6 months"),
        (90, "3 months"),
        (42, "6 weeks"),
        (14, "2 weeks"),
        (10, "10 days"),
    ],
)
def test_day_counts_read_as_a_clinician_says_them(days: int, text: str) -> None:
    assert duration(days) == text


def test_prefetch_query_parameters_are_checked_against_fhir_r4() -> None:
    from cds_service.plans.resource_types import unsearchable

    assert unsearchable("Observation?patient={{context.patientId}}&code=http://loinc.org|1988-5") == []
    assert unsearchable("Observation?patient=x&_lastUpdated=gt2026") == []
    assert unsearchable("Observation?patient=x&cod=1&subjekt:Patient=2") == ["cod", "subjekt"]
