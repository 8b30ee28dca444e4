"""Prefetch template rendering and checking against the CDS Hooks 2.0 query subset."""

import pytest

from cds_service.fhir import USER_TOKENS, TemplateError, check, expand, user_tokens

CONTEXT_FIELDS = ("userId", "patientId", "encounterId")


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ("Practitioner/123", {"userPractitionerId": "123"}),
        ("PractitionerRole/9", {"userPractitionerRoleId": "9"}),
        ("Patient/p1", {"userPatientId": "p1"}),
        ("RelatedPerson/rp-2", {"userRelatedPersonId": "rp-2"}),
        ("Device/1", {}),
        ("Practitioner/", {}),
        ("Practitioner", {}),
        ("Practitioner/1/_history/2", {}),
        ("123", {}),
        ("", {}),
        (None, {}),
    ],
)
def test_user_tokens(user_id: str | None, expected: dict[str, str]) -> None:
    assert user_tokens(user_id) == expected
    assert set(expected) <= set(USER_TOKENS)


def test_render_read_and_search() -> None:
    context = {"patientId": "p1", "encounterId": "e9"}
    assert expand("Patient/{{context.patientId}}", context, {}) == "Patient/p1"
    assert (
        expand(
            "Observation?patient={{context.patientId}}&encounter={{ context.encounterId }}&_count=1",
            context,
            {},
        )
        == "Observation?patient=p1&encounter=e9&_count=1"
    )


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("a b/c", "a%20b%2Fc"),
        ("x&_include=*", "x%26_include%3D%2A"),
        ("q?#", "q%3F%23"),
        ("Zoë", "Zo%C3%AB"),
        ("{{context.other}}", "%7B%7Bcontext.other%7D%7D"),
        (42, "42"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_render_url_encodes_values(value: object, rendered: str) -> None:
    assert expand("Patient?identifier={{context.patientId}}", {"patientId": value}, {}) == (
        f"Patient?identifier={rendered}"
    )


def test_render_user_tokens() -> None:
    user = user_tokens("PractitionerRole/r 1")
    assert expand("PractitionerRole/{{userPractitionerRoleId}}", {}, user) == "PractitionerRole/r%201"
    assert expand("{{  userPractitionerRoleId  }}", {}, user) == "r%201"


@pytest.mark.parametrize(
    ("template", "context", "user", "named"),
    [
        ("Patient/{{context.patientId}}", {}, {}, "{{context.patientId}}"),
        ("Patient/{{context.medication.id}}", {"medication": {"id": "m"}}, {}, "{{context.medication.id}}"),
        ("Patient/{{context.draftOrders}}", {"draftOrders": {"resourceType": "Bundle"}}, {}, "draftOrders"),
        ("Patient/{{context.ids}}", {"ids": ["a", "b"]}, {}, "{{context.ids}}"),
        ("Patient/{{context.patientId}}", {"patientId": None}, {}, "{{context.patientId}}"),
        ("Patient/{{context.patientId}}", {"patientId": 1.5}, {}, "{{context.patientId}}"),
        ("Patient/{{context.patientId}}", {"patientId": ""}, {}, "{{context.patientId}}"),
        ("Patient/{{Patient.id}}", {}, {}, "{{Patient.id}}"),
        ("Observation?date=gt{{today() - 90 days}}", {}, {}, "{{today() - 90 days}}"),
        ("Practitioner/{{userPractitionerId}}", {}, {"userPatientId": "p1"}, "{{userPractitionerId}}"),
        ("Patient/{{}}", {}, {}, "{{}}"),
        ("Patient/{{context.}}", {}, {}, "{{context.}}"),
    ],
)
def test_render_refuses_unresolvable_tokens(
    template: str, context: dict[str, object], user: dict[str, str], named: str
) -> None:
    with pytest.raises(TemplateError, match=named.replace("(", r"\(").replace(")", r"\)")):
        expand(template, context, user)


@pytest.mark.parametrize(
    "template", ["Patient/{{context.patientId}", "Patient/{context.patientId}}", "P/{{a{{b}}"]
)
def test_render_refuses_unbalanced_braces(template: str) -> None:
    with pytest.raises(TemplateError, match="unbalanced"):
        expand(template, {"patientId": "p1"}, {})


def test_template_error_is_a_value_error_without_the_value() -> None:
    with pytest.raises(ValueError, match=r"context\.patientId") as caught:
        expand("Patient/{{context.patientId}}", {"patientId": {"secret": "s3cr3t"}}, {})
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    "template",
    [
        "Patient/{{context.patientId}}",
        "Patient/123",
        "Encounter/{{ context.encounterId }}",
        "Practitioner/{{userPractitionerId}}",
        "PractitionerRole/{{userPractitionerRoleId}}",
        "Observation",
        "Observation?patient={{context.patientId}}&code=http://loinc.org|4548-4&_count=1&_sort=-date",
        "Observation?patient={{context.patientId}}&code=http%3A%2F%2Floinc.org%7C4548-4",
        "Condition?patient={{context.patientId}}&clinical-status=active,recurrence,relapse",
        "Condition?subject=Patient/{{context.patientId}}&code:in=http://example.org/ValueSet/back-pain",
        "Observation?patient={{context.patientId}}&date=ge2024-01-01&date=lt2025-01-01T00:00:00Z",
        "Observation?date=eq2024&date=le2024-06&date=gt{{context.encounterId}}",
        "Procedure?patient={{context.patientId}}&_sort=-date,status&_count=50",
        "MedicationRequest?encounter={{context.encounterId}}&status=active",
    ],
)
def test_check_accepts_the_prefetch_subset(template: str) -> None:
    assert check(template, CONTEXT_FIELDS) == []


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("", "empty"),
        ("Patient?name:exact=Doe", "':exact'"),
        ("Condition?code:contains=pain", "':contains'"),
        ("Condition?onset-date:missing=true", "':missing'"),
        ("Condition?clinical-status:not=resolved", "':not'"),
        ("Condition?code:text=back", "':text'"),
        ("Condition?code:above=http://snomed.info/sct|1", "':above'"),
        ("Condition?code:below=http://snomed.info/sct|1", "':below'"),
        ("Condition?subject:Patient=p1", "':Patient'"),
        ("Observation?sort:desc=date", "':desc'"),
        ("Condition?patient=p1&_include=Condition:subject", "_include"),
        ("Patient?_revinclude=Condition:subject", "_revinclude"),
        ("Patient?_has:Condition:subject:code=1", "_has"),
        ("Patient?_elements=id", "_elements"),
        ("Patient?_summary=true", "_summary"),
        ("Patient?_id=p1", "_id"),
        ("Patient?_count:x=1", "no modifier"),
        ("Condition?subject.name=Doe", "chained"),
        ("Condition?subject:Patient.name=Doe", "chained"),
        ("Observation?date=ne2024-01-01", "'ne'"),
        ("Observation?date=sa2024-01-01", "'sa'"),
        ("Observation?date=eb2024", "'eb'"),
        ("Observation?date=ap{{context.encounterId}}", "'ap'"),
        ("Observation?date=ge2024,ap2025", "'ap'"),
        ("Observation?_count=abc", "_count"),
        ("Observation?_count=0", "_count"),
        ("Observation?_count=1%C2%B2", "_count"),
        ("Observation?_sort=date;drop", "_sort"),
        ("Observation?patient", "no value"),
        ("Observation?patient=", "no value"),
        ("Observation?patient=p1&&code=1", "empty parameter"),
        ("Observation?code=1,,2", "empty value"),
        ("Observation?code=a b", "whitespace"),
        ("Observation?{{context.patientId}}=1", "tokens are only allowed"),
        ("Patient/{{context.medication.id}}", "first-level"),
        ("Patient/{{context.unknownField}}", "'unknownField' is not a context field"),
        ("Patient/{{Patient.id}}", "not a CDS Hooks 2.0 prefetch token"),
        ("Observation?date=gt{{today()}}", "not a CDS Hooks 2.0 prefetch token"),
        ("Patient/{{context.patientId}", "unbalanced"),
        ("patient/{{context.patientId}}", "not a FHIR resource type"),
        ("{{context.patientId}}", "not a FHIR resource type"),
        ("Patient/{{context.patientId}}/_history/1", "only instance reads"),
        ("Patient/{{context.patientId}}?_elements=id", "no query parameters"),
        ("Patient/a_b", "not a FHIR id"),
        ("Patient/pre-{{context.patientId}}", "not a FHIR id"),
        ("http://evil.example/Patient/1", "relative URL"),
        ("/Patient/1", "relative URL"),
        ("Patient/1#x", "fragment"),
    ],
)
def test_check_reports_problems(template: str, problem: str) -> None:
    problems = check(template, CONTEXT_FIELDS)
    assert any(problem in p for p in problems), problems


def test_check_names_every_problem() -> None:
    problems = check("Condition?code:exact=1&_include=x&date=ne2020&subject.name=y", CONTEXT_FIELDS)
    assert len(problems) == 4, problems
