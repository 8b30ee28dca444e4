"""Builders for valid FHIR R4 resources and for evaluations of clinical JSON-Logic rules over them.

Every resource built here is validated against the FHIR model, so a test never passes on data that a real
EHR could not send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from cds_service.logic import Evaluator
from cds_service.plans.engine import clinical_engine
from cds_service.plans.evaluation import Evaluation, activated
from cds_service.plans.model import Criterion, Fact
from cds_service.plans.terminology import TEXT_MATCH_URL, compile_valueset
from cds_service.plans.vocabulary import Vocabulary
from cds_service.record import PatientRecord, make_entry

T0 = date(2026, 11, 1)

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
PATIENT_REF = {"reference": "Patient/p1"}


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """Reject a resource that is not valid FHIR, then hand back the plain dict the service reads."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    result: dict[str, Any] = {"coding": [coding]}
    if text is not None:
        result["text"] = text
    return result


def _status_pair(
    resource: dict[str, Any], clinical: tuple[str, str | None], verification: tuple[str, str | None]
) -> None:
    for key, (system, code) in (("clinicalStatus", clinical), ("verificationStatus", verification)):
        if code is not None:
            resource[key] = concept(system, code)


def condition(
    id_: str,
    code: str = "M96.1",
    *,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    system: str = ICD10,
    **fields: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id_,
        "subject": PATIENT_REF,
        "code": concept(system, code),
    }
    _status_pair(resource, (CONDITION_CLINICAL, clinical), (CONDITION_VERIFICATION, verification))
    return valid(resource | fields)


def procedure(id_: str, code: str = "22612", *, status: str = "completed", **fields: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Procedure",
        "id": id_,
        "status": status,
        "subject": PATIENT_REF,
        "code": concept(CPT, code),
    }
    return valid(resource | fields)


def observation(id_: str, code: str = "1988-5", *, status: str = "final", **fields: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Observation",
        "id": id_,
        "status": status,
        "subject": PATIENT_REF,
        "code": concept(LOINC, code),
    }
    return valid(resource | fields)


def quantity(value: float, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def medication_request(
    id_: str, medication: dict[str, Any], *, status: str = "active", **fields: Any
) -> dict[str, Any]:
    resource = {
        "resourceType": "MedicationRequest",
        "id": id_,
        "status": status,
        "intent": "order",
        "subject": PATIENT_REF,
        "medicationCodeableConcept": medication,
    }
    return valid(resource | fields)


def medication_statement(
    id_: str, medication: dict[str, Any], *, status: str = "active", **fields: Any
) -> dict[str, Any]:
    resource = {
        "resourceType": "MedicationStatement",
        "id": id_,
        "status": status,
        "subject": PATIENT_REF,
        "medicationCodeableConcept": medication,
    }
    return valid(resource | fields)


def diagnostic_report(
    id_: str, code: str = "24531-6", *, status: str = "final", **fields: Any
) -> dict[str, Any]:
    resource = {
        "resourceType": "DiagnosticReport",
        "id": id_,
        "status": status,
        "subject": PATIENT_REF,
        "code": concept(LOINC, code),
    }
    return valid(resource | fields)


def service_request(
    id_: str, code: str = "72148", *, status: str = "active", **fields: Any
) -> dict[str, Any]:
    resource = {
        "resourceType": "ServiceRequest",
        "id": id_,
        "status": status,
        "intent": "order",
        "subject": PATIENT_REF,
        "code": concept(CPT, code),
    }
    return valid(resource | fields)


def allergy(
    id_: str,
    code: str = "91936005",
    *,
    clinical: str | None = "active",
    verification: str | None = "confirmed",
    **fields: Any,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": id_,
        "patient": PATIENT_REF,
        "code": concept(SNOMED, code),
    }
    _status_pair(resource, (ALLERGY_CLINICAL, clinical), (ALLERGY_VERIFICATION, verification))
    return valid(resource | fields)


def patient(id_: str = "p1") -> dict[str, Any]:
    return valid({"resourceType": "Patient", "id": id_, "birthDate": "1960-05-01"})


def valueset(
    name: str,
    include: Sequence[dict[str, Any]] = (),
    exclude: Sequence[dict[str, Any]] = (),
    text: Sequence[str] = (),
) -> dict[str, Any]:
    """A ValueSet resource; `include`/`exclude` are compose parts, `text` the text-match terms."""
    resource: dict[str, Any] = {
        "resourceType": "ValueSet",
        "url": f"http://postfusion-cds.org/fhir/ValueSet/{name}",
        "name": name,
        "status": "active",
    }
    if include or exclude:
        resource["compose"] = {"include": list(include)}
        if exclude:
            resource["compose"]["exclude"] = list(exclude)
    if text:
        resource["extension"] = [{"url": TEXT_MATCH_URL, "valueString": term} for term in text]
    return valid(resource)


def codes(system: str, *values: str) -> dict[str, Any]:
    """A compose part listing exact codes."""
    return {"system": system, "concept": [{"code": value} for value in values]}


def is_a(system: str, value: str, op: str = "is-a") -> dict[str, Any]:
    """A compose part with one hierarchy filter: the code and the codes that extend it."""
    return {"system": system, "filter": [{"property": "concept", "op": op, "value": value}]}


def evaluation(
    resources: Iterable[dict[str, Any]] = (),
    *,
    facts: Mapping[str, Any] | None = None,
    valuesets: Mapping[str, dict[str, Any]] | None = None,
    params: Mapping[str, Any] | None = None,
    criteria: Sequence[tuple[str, Any, Any]] = (),
    drafts: Iterable[dict[str, Any]] = (),
    draft_dependent: Iterable[str] = (),
    t0: date = T0,
) -> Evaluation:
    """An evaluation with facts given as JSON-Logic rules and criteria as (code, expression, requiredWhen)."""
    compiled_valuesets = {}
    for name, resource in (valuesets or {}).items():
        compiled, problems = compile_valueset(resource)
        assert problems == [], problems
        compiled_valuesets[name] = compiled
    vocabulary = Vocabulary(
        facts=set(facts or {}),
        valuesets=set(compiled_valuesets),
        params=set(params or {}),
        criteria={code for code, _, _ in criteria},
    )
    engine = clinical_engine(vocabulary)
    return Evaluation(
        record=PatientRecord.of_resources(resources),
        t0=t0,
        hook="patient-view",
        params=dict(params or {}),
        facts={
            name: Fact(name, f"test fact {name}", engine.compile(rule))
            for name, rule in (facts or {}).items()
        },
        draft_dependent=frozenset(draft_dependent),
        valuesets=compiled_valuesets,
        drafts=[make_entry(draft) for draft in drafts],
        criteria=tuple(
            Criterion(
                code=code,
                label=f"criterion {code}",
                expression=engine.compile(expression),
                required_when=None if required_when is None else engine.compile(required_when),
                citation="test",
            )
            for code, expression, required_when in criteria
        ),
    )


def compile_for(evaluation: Evaluation, rule: Any) -> Evaluator:
    """Compile `rule` knowing exactly the names the evaluation defines, as the loader would."""
    vocabulary = Vocabulary(
        facts=set(evaluation.facts),
        valuesets=set(evaluation.valuesets),
        params=set(evaluation.params),
        criteria={criterion.code for criterion in evaluation.criteria},
    )
    return clinical_engine(vocabulary).compile(rule)


def run(evaluation: Evaluation, rule: Any) -> Any:
    """Compile and evaluate one rule inside the evaluation, the way a card condition runs."""
    compiled = compile_for(evaluation, rule)
    with activated(evaluation):
        return compiled(None)


def refs(value: Any) -> list[str]:
    """References of an entry or a list of entries, in order: what assertions about selections compare."""
    items = value if isinstance(value, list) else [value]
    return [item.reference for item in items]
