"""The rules' reads as FHIR `DataRequirement`s: what a Library carries and `$data-requirements` returns.

A status profile that is a list of codes becomes a code filter on `status`; a `within_days` window becomes
a date filter of that many days (the site's value of the parameter). A resource type whose code may sit in
one of several elements (an Encounter's type, service type or reason) gets one requirement per element,
since a requirement's code filters must all hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..record import StatusIn, profile_test
from ..record.entry import CODE_FIELDS, DATE_FIELDS
from . import canonical
from .model import Plan, RuleSet
from .reads import Read, merged, named, transitive_reads
from .terminology import ValueSet

BASE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
UCUM = "http://unitsofmeasure.org"
SUFFIXES = ("DateTime", "Period", "Instant")


def code_paths(resource_type: str) -> tuple[str, ...]:
    """The elements whose codes a value set is matched against: `code`, or `medication` for a
    medicationCodeableConcept (the choice element's name, as FHIRPath and data requirements spell it)."""
    fields = CODE_FIELDS.get(resource_type, ("code",))
    return tuple(field.removesuffix("CodeableConcept") for field in fields)


def date_path(resource_type: str) -> str:
    """The element a look-back window is measured on: the first date the record reads (`effective`)."""
    first = DATE_FIELDS.get(resource_type, ("date",))[0]
    for suffix in SUFFIXES:
        first = first.removesuffix(suffix)
    return first


def data_requirements(
    reads: Iterable[Read], valuesets: dict[str, ValueSet], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """FHIR R4 DataRequirement JSON for the records `reads` name (draft orders come with the hook, so a
    requirement states only what is read from the record)."""
    found = []
    for read in merged(reads, params):
        if read.draft:
            continue
        for path in code_paths(read.resource_type):
            requirement: dict[str, Any] = {
                "type": read.resource_type,
                "profile": [BASE_PROFILE + read.resource_type],
            }
            filters: list[dict[str, Any]] = []
            if read.valueset and valuesets[read.valueset].url:
                filters.append({"path": path, "valueSet": valuesets[read.valueset].url})
            test = profile_test(read.resource_type, read.profile or None)
            if isinstance(test, StatusIn):
                filters.append({"path": "status", "code": [{"code": status} for status in test.allowed]})
            if filters:
                requirement["codeFilter"] = filters
            if read.lookback and isinstance(params.get(read.lookback), int):
                days = params[read.lookback]
                duration = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
                requirement["dateFilter"] = [
                    {"path": date_path(read.resource_type), "valueDuration": duration}
                ]
            if read.profile:
                requirement["extension"] = [{"url": canonical.STATUS_PROFILE, "valueCode": read.profile}]
            found.append(requirement)
    return found


def module_definition(
    name: str, requirements: list[dict[str, Any]], depends_on: Iterable[str]
) -> dict[str, Any]:
    """The Library `$data-requirements` returns: a module-definition listing the effective data
    requirements and the libraries they come from."""
    library: dict[str, Any] = {
        "resourceType": "Library",
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/library-type",
                    "code": "module-definition",
                }
            ]
        },
        "title": f"Data requirements of {name}",
        "dataRequirement": requirements,
    }
    if depends_on:  # FHIR allows no empty arrays
        library["relatedArtifact"] = [{"type": "depends-on", "resource": url} for url in sorted(depends_on)]
    return library


def _libraries_read(rules: Iterable[Any], ruleset: RuleSet) -> set[str]:
    """The ids of the Libraries whose facts `rules` name, to any depth."""
    pending, seen = list(rules), set()
    while pending:
        for name in named(pending.pop(), "fact"):
            if name in ruleset.facts and name not in seen:
                seen.add(name)
                pending.append(ruleset.facts[name].rule)
    return {ruleset.facts[name].library for name in seen}


def library_requirements(ruleset: RuleSet, library_id: str) -> tuple[list[dict[str, Any]], set[str]]:
    """The effective data requirements of a Library's facts, and the other Libraries they read."""
    rules = [fact.rule for fact in ruleset.facts.values() if fact.library == library_id]
    reads = transitive_reads(rules, ruleset.fact_rules(), ruleset.plan_rules())
    return data_requirements(reads, ruleset.valuesets, ruleset.params), _libraries_read(rules, ruleset) - {
        library_id
    }


def plan_requirements(ruleset: RuleSet, plan: Plan) -> tuple[list[dict[str, Any]], set[str]]:
    """The effective data requirements of a PlanDefinition's cards, and the Libraries they read."""
    reads = transitive_reads(plan.rules, ruleset.fact_rules(), ruleset.plan_rules())
    return data_requirements(reads, ruleset.valuesets, ruleset.params), _libraries_read(plan.rules, ruleset)


def with_data_requirements(ruleset: RuleSet) -> dict[str, dict[str, dict[str, Any]]]:
    """The artifacts, each Library carrying the `dataRequirement` computed from its facts."""
    libraries = {
        library_id: {**library, "dataRequirement": library_requirements(ruleset, library_id)[0]}
        for library_id, library in ruleset.artifacts.get("Library", {}).items()
    }
    return {**ruleset.artifacts, "Library": libraries}


def module_definition_of(ruleset: RuleSet, kind: str, artifact_id: str) -> dict[str, Any] | None:
    """`$data-requirements` of a Library or PlanDefinition by id; None when there is no such artifact."""
    artifact = ruleset.artifacts.get(kind, {}).get(artifact_id)
    if artifact is None:
        return None
    if kind == "Library":
        requirements, libraries = library_requirements(ruleset, artifact_id)
    else:
        plan = next(plan for plan in ruleset.plans if plan.id == artifact_id)
        requirements, libraries = plan_requirements(ruleset, plan)
    urls = {str(ruleset.artifacts["Library"][library].get("url")) for library in libraries}
    return module_definition(str(artifact.get("title") or artifact_id), requirements, urls)
