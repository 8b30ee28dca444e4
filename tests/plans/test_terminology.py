"""ValueSet compilation: exact codes, ICD-10-CM is-a prefixes, excludes, text-match and reported problems."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.plans.terminology import ValueSet, compile_valueset
from cds_service.record import make_entry

from support.builders import (
    ICD10,
    RXNORM,
    SNOMED,
    codes,
    concept,
    condition,
    is_a,
    medication_request,
    valueset,
)


def compiled(resource: dict[str, Any]) -> ValueSet:
    result, problems = compile_valueset(resource)
    assert problems == []
    return result


HARDWARE = compiled(valueset("Hardware", include=[codes(ICD10, "M96.1"), is_a(ICD10, "T84.216")]))
DEPRESSION = compiled(
    valueset(
        "Depression", include=[is_a(ICD10, "F32")], exclude=[codes(ICD10, "F32.4"), is_a(ICD10, "F32.5")]
    )
)
UNSUPPORTED = "only property 'concept' with op is-a or descendent-of is supported"
GABAPENTINOIDS = compiled(
    valueset("Gabapentinoids", include=[codes(RXNORM, "310431")], text=["Gabapentin", "pregabalin"])
)


@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        (ICD10, "M96.1", True),
        (SNOMED, "M96.1", False),
        (ICD10, "M96.10", False),
        (ICD10, "M96", False),
        (ICD10, "T84.216", True),
        (ICD10, "T84.216A", True),
        (ICD10, "T84.216D", True),
        (ICD10, "T84.216S", True),
        (ICD10, "T84.21", False),
        (ICD10, "T84.226A", False),
        (SNOMED, "T84.216A", False),
        ("", "T84.216A", False),
    ],
)
def test_exact_codes_need_their_system_and_is_a_matches_by_prefix(
    system: str, code: str, expected: bool
) -> None:
    """RULES.md 0: T84.216 matches its 7th-character children only, and only in ICD-10-CM."""
    assert HARDWARE.contains(system, code) is expected


def test_exact_code_is_not_a_prefix() -> None:
    """A listed concept is that code only; the prefix rule is for `is-a` filters."""
    assert HARDWARE.contains(ICD10, "M96.1") is True
    only_exact = compiled(valueset("Exact", include=[codes(ICD10, "T84.216")]))
    assert only_exact.contains(ICD10, "T84.216A") is False


@pytest.mark.parametrize(
    ("code", "expected"),
    [("F32", True), ("F32.9", True), ("F32.A", True), ("F32.4", False), ("F32.5", False), ("F32.5X", False)],
)
def test_exclude_takes_codes_and_prefixes_out_again(code: str, expected: bool) -> None:
    assert DEPRESSION.contains(ICD10, code) is expected


def test_entry_matches_by_any_coding() -> None:
    resource = condition("c", "Z00.00")
    resource["code"]["coding"].append({"system": ICD10, "code": "T84.216A"})
    assert HARDWARE.matches(make_entry(resource)) is True
    assert HARDWARE.matches(make_entry(condition("c", "T84.226A"))) is False
    assert DEPRESSION.matches(make_entry(condition("c", "F32.4"))) is False


@pytest.mark.parametrize(
    ("medication", "expected"),
    [
        (concept(RXNORM, "310431"), True),
        (concept(RXNORM, "999999", text="GABAPENTIN 300 mg capsule"), True),
        (concept(RXNORM, "999999", display="Lyrica (Pregabalin) 75 MG"), True),
        ({"text": "gabaPENTIN enacarbil"}, True),
        (concept(RXNORM, "999999", text="Duloxetine 30 mg"), False),
        ({"text": "gaba"}, False),
    ],
)
def test_text_match_is_case_insensitive_on_medication_text(
    medication: dict[str, Any], expected: bool
) -> None:
    """RULES.md 0: uncoded or product-coded prescriptions fall back to an ingredient-name match."""
    assert GABAPENTINOIDS.matches(make_entry(medication_request("m", medication))) is expected


def test_text_match_only_applies_when_the_value_set_has_terms() -> None:
    assert HARDWARE.matches(make_entry(medication_request("m", {"text": "gabapentin"}))) is False


@pytest.mark.parametrize(
    ("valueset_", "code", "expected"),
    [
        (HARDWARE, "M96.1", True),
        (HARDWARE, "T84.216A", True),
        (HARDWARE, "T84.21", False),
        (DEPRESSION, "F32.9", True),
        (DEPRESSION, "F32.4", False),
        (DEPRESSION, "F32.51", False),
        (GABAPENTINOIDS, "310431", True),
        (GABAPENTINOIDS, "gabapentin", False),
    ],
)
def test_has_code_ignores_the_system(valueset_: ValueSet, code: str, expected: bool) -> None:
    """Bare codes (an Observation answer given as a string) are matched against every included system."""
    assert valueset_.has_code(code) is expected


def test_exact_only() -> None:
    """Only value sets of listed codes can be answered from an exact-code index."""
    assert compiled(valueset("A", include=[codes(ICD10, "M96.1")])).exact_only is True
    assert compiled(
        valueset("B", include=[codes(ICD10, "M96.1")], exclude=[codes(ICD10, "M96.1")])
    ).exact_only
    assert HARDWARE.exact_only is False
    assert GABAPENTINOIDS.exact_only is False


def test_expansion_contains_is_compiled_as_exact_codes() -> None:
    resource = valueset("Expanded")
    resource["expansion"] = {
        "timestamp": "2026-01-01T00:00:00Z",
        "contains": [{"system": SNOMED, "code": "213299007"}, {"system": ICD10, "code": "M96.1"}],
    }
    result = compiled(resource)
    assert result.contains(SNOMED, "213299007") and result.contains(ICD10, "M96.1")
    assert not result.contains(ICD10, "M96.10")
    assert result.exact_only is True
    assert result.url == "http://postfusion-cds.org/fhir/ValueSet/Expanded"


@pytest.mark.parametrize(
    ("resource", "problems"),
    [
        (
            valueset(
                "Regex",
                include=[
                    {"system": ICD10, "filter": [{"property": "concept", "op": "regex", "value": "T8.*"}]}
                ],
            ),
            ["compose.include[0].filter[0]: " + UNSUPPORTED],
        ),
        (
            valueset(
                "Parent",
                include=[
                    codes(ICD10, "M96.1"),
                    {"system": ICD10, "filter": [{"property": "parent", "op": "=", "value": "T84"}]},
                ],
            ),
            ["compose.include[1].filter[0]: " + UNSUPPORTED],
        ),
        (
            valueset("NoSystem", include=[codes(ICD10, "M96.1"), {"concept": [{"code": "T84.216A"}]}]),
            ["compose.include[1].system is required"],
        ),
        (
            valueset(
                "NoExcludeSystem", include=[codes(ICD10, "M96.1")], exclude=[{"concept": [{"code": "M96.1"}]}]
            ),
            ["compose.exclude[0].system is required"],
        ),
        (
            valueset("Empty"),
            ["compose.include: a value set needs at least one code or filter"],
        ),
    ],
    ids=[
        "unsupported op",
        "unsupported property",
        "include without system",
        "exclude without system",
        "empty",
    ],
)
def test_problems_are_reported_with_their_path(resource: dict[str, Any], problems: list[str]) -> None:
    """Unsupported compose features must fail validation instead of silently matching nothing."""
    assert compile_valueset(resource)[1] == problems


def test_including_another_value_set_is_reported() -> None:
    """Nested value sets are not resolved, so a rule author must be told to list the codes instead."""
    other = ["http://example.org/fhir/ValueSet/other"]
    with_system = valueset("Nested", include=[{"system": ICD10, "valueSet": other}])
    assert compile_valueset(with_system)[1] == [
        "compose.include[0].valueSet: include other value sets by listing their codes"
    ]
    # Without a system the part is rejected before its valueSet is looked at: still one problem, same part.
    (problem,) = compile_valueset(valueset("Nested", include=[{"valueSet": other}]))[1]
    assert problem.startswith("compose.include[0]")


def test_descendent_of_excludes_the_code_itself() -> None:
    """FHIR R4 filter-operator: descendent-of is the transitive children, "excluding the concept itself"."""
    children = compiled(valueset("Children", include=[is_a(ICD10, "T84.216", op="descendent-of")]))
    assert children.contains(ICD10, "T84.216A") is True
    assert children.contains(ICD10, "T84.216") is False
