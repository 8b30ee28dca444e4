"""Check the Questionnaires of the plan-definition folder against the rules and the local CodeSystem (V2-32).

A screen is only worth filling in if each answer reaches a rule. So `validate` refuses an item extracted as an
Observation (SDC `sdc-questionnaire-observationExtract`) whose code no value set the rules read as an
Observation (or as a component of one) contains, a local code the CodeSystem lacks, an item type that does
not fit the value type the CodeSystem publishes, and a quantity without the unit the rules compare in. It also
refuses a screen that leaves out a local finding the rules read, and an outside-care course whose therapy
codes no rule counts. The SDC readers here are shared with the extraction in `cds_service.forms`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from . import canonical
from .errors import Problem
from .local_codes import concept_property, local_concepts
from .metadata import REQUIRED, REVIEW_DATES
from .reads import observed_values, transitive_reads
from .terminology import ValueSet

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
OBSERVATION_EXTRACT = f"{SDC}sdc-questionnaire-observationExtract"
EXTRACT_CATEGORY = f"{SDC}sdc-questionnaire-observation-extract-category"
EXTRACTION_CONTEXT = f"{SDC}sdc-questionnaire-itemExtractionContext"
EXTRACT_VALUE = f"{SDC}sdc-questionnaire-definitionExtractValue"
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption"
CORE_DEFINITIONS = "http://hl7.org/fhir/StructureDefinition/"
COMPONENT = "component"  # SDC's relationship code: a child item is a component of its parent's Observation
URL_BASE = f"{canonical.BASE}/Questionnaire/"
# The CodeSystem's `value-type` and the Questionnaire item types whose answers carry it.
ITEM_TYPES = {
    "boolean": frozenset({"boolean"}),
    "Quantity": frozenset({"decimal", "quantity"}),
    "CodeableConcept": frozenset({"choice", "open-choice"}),
    "integer": frozenset({"integer"}),
}


def extension_value(node: dict[str, Any], url: str) -> Any:
    """The value[x] of the first extension of `node` with `url`, or None."""
    for extension in node.get("extension") or ():
        if isinstance(extension, dict) and extension.get("url") == url:
            return next((value for key, value in extension.items() if key.startswith("value")), None)
    return None


def extract_mode(item: dict[str, Any], inherited: bool) -> bool | str:
    """Whether an item's answers become Observations (True), components of its parent's (COMPONENT), or
    neither; a boolean is inherited by the items below it, as SDC says."""
    value = extension_value(item, OBSERVATION_EXTRACT)
    return value if isinstance(value, bool) or value == COMPONENT else inherited


def extraction_context(item: dict[str, Any]) -> str | None:
    """The resource type a group's answers build (SDC definition-based extraction), one per repetition."""
    value = extension_value(item, EXTRACTION_CONTEXT)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Asked:
    """One item of a Questionnaire, with where it is and how its answers are extracted."""

    path: str  # `item[1].item[0]`
    item: dict[str, Any]
    mode: bool | str
    context: str | None  # the resource type a definition-based group around it builds


def asked(questionnaire: dict[str, Any]) -> Iterator[Asked]:
    """Every item, depth first."""
    root = extract_mode(questionnaire, False)

    def visit(items: Any, path: str, inherited: bool, context: str | None) -> Iterator[Asked]:
        for index, item in enumerate(items or ()):
            if not isinstance(item, dict):
                continue
            where = f"{path}[{index}]"
            mode = extract_mode(item, inherited)
            inside = extraction_context(item) or context
            yield Asked(where, item, mode, inside)
            yield from visit(item.get("item"), f"{where}.item", mode is True, inside)

    yield from visit(questionnaire.get("item"), "item", root is True, None)


class QuestionnaireCheck:
    """The checks for one load: what the rules read, and what the local CodeSystem publishes."""

    def __init__(
        self,
        codesystems: Iterable[dict[str, Any]],
        valuesets: dict[str, ValueSet],
        fact_rules: dict[str, Any],
        plan_rules: dict[str, list[Any]],
    ) -> None:
        self.concepts = local_concepts(codesystems)
        self.valuesets = valuesets
        rules = [rule for plan in plan_rules.values() for rule in plan]
        reads = transitive_reads(rules, fact_rules, plan_rules)
        self.read_as: dict[str, set[str]] = {}
        for read in reads:
            if read.valueset and not read.draft:
                self.read_as.setdefault(read.resource_type, set()).add(read.valueset)
        values = observed_values([*fact_rules.values(), *rules], fact_rules)
        self.components = {name for observed in values.values() for name in observed.components}

    def problems(self, questionnaires: list[tuple[str, dict[str, Any]]]) -> Iterator[Problem]:
        asked_codes: set[str] = set()
        for file, questionnaire in questionnaires:
            for path, message in self.metadata(questionnaire):
                yield Problem(file, path, message)
            for where, message in self.local_codings(questionnaire):
                yield Problem(file, where, message)
            for question in asked(questionnaire):
                if question.mode is True or question.mode == COMPONENT:
                    asked_codes |= self.local_codes(question)
                    for where, message in self.extracted(question):
                        yield Problem(file, where, message)
                if question.context is not None:
                    for where, message in self.defined(question):
                        yield Problem(file, where, message)
        if questionnaires:
            file = questionnaires[0][0]
            for code, valueset in sorted(self.unasked(asked_codes).items()):
                message = (
                    f"the rules read local code '{code}' (value set {valueset}) as an Observation, but no "
                    "Questionnaire item asks it"
                )
                yield Problem(file, "item", message)

    def metadata(self, questionnaire: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """The metadata `metadata.py` asks of every knowledge artifact, and a URL under the project's base."""
        for element, why in REQUIRED.items():
            value = questionnaire.get(element)
            if not isinstance(value, str) or not value.strip():
                yield element, f"a Questionnaire needs '{element}': {why}"
        if not any(isinstance(questionnaire.get(element), str) for element in REVIEW_DATES):
            yield "lastReviewDate", "a Questionnaire needs 'approvalDate' or 'lastReviewDate'"
        if not str(questionnaire.get("url") or "").startswith(URL_BASE):
            yield "url", f"a Questionnaire's url starts with {URL_BASE}, where integrators resolve it"

    def local_codings(self, questionnaire: dict[str, Any]) -> Iterator[tuple[str, str]]:
        for where, coding in _codings(questionnaire, ""):
            if coding.get("system") == canonical.LOCAL_CODES and coding.get("code") not in self.concepts:
                yield (
                    where,
                    f"local code '{coding.get('code')}' is not in the CodeSystem {canonical.LOCAL_CODES}",
                )

    def local_codes(self, question: Asked) -> set[str]:
        return {
            str(coding.get("code"))
            for coding in question.item.get("code") or ()
            if coding.get("system") == canonical.LOCAL_CODES
        }

    def extracted(self, question: Asked) -> Iterator[tuple[str, str]]:
        """An item extracted as an Observation (or a component): its codes reach a rule, in the right type."""
        item, where = question.item, question.path
        if item.get("type") in {"group", "display"}:
            return
        codes = [coding for coding in item.get("code") or () if isinstance(coding, dict)]
        if not codes:
            yield where, "an item extracted as an Observation needs a code (item.code)"
            return
        read = self.components if question.mode == COMPONENT else self.read_as.get("Observation", set())
        kind = "an Observation component" if question.mode == COMPONENT else "an Observation"
        for index, coding in enumerate(codes):
            system, code = str(coding.get("system") or ""), str(coding.get("code") or "")
            if not any(
                self.valuesets[name].contains(system, code) for name in read if name in self.valuesets
            ):
                yield (
                    f"{where}.code[{index}]",
                    f"no value set the rules read as {kind} contains {system}|{code}",
                )
            if system == canonical.LOCAL_CODES and code in self.concepts:
                yield from self.fits(where, item, self.concepts[code])

    def fits(self, where: str, item: dict[str, Any], concept: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """The item type gives the value type the CodeSystem publishes, a quantity in its unit, and answer
        codes that belong to this concept."""
        value_type, unit = concept_property(concept, "value-type"), concept_property(concept, "unit")
        code = concept.get("code")
        if value_type not in ITEM_TYPES:
            yield (
                f"{where}.type",
                f"the CodeSystem gives local code '{code}' no value type an item can answer",
            )
            return
        if item.get("type") not in ITEM_TYPES[value_type]:
            allowed = " or ".join(sorted(ITEM_TYPES[value_type]))
            yield (
                f"{where}.type",
                f"'{code}' is a {value_type} in the CodeSystem: the item type must be {allowed}",
            )
        if value_type == "Quantity":
            given = extension_value(item, UNIT)
            if not isinstance(given, dict) or given.get("code") != unit:
                yield (
                    f"{where}.extension",
                    f"'{code}' is read in '{unit}': the item needs questionnaire-unitOption {unit}",
                )
        for index, option in enumerate(item.get("answerOption") or ()):
            answer = option.get("valueCoding") or {}
            parent = concept_property(self.concepts.get(str(answer.get("code")), {}), "parent")
            if answer.get("system") == canonical.LOCAL_CODES and parent != code:
                message = f"answer '{answer.get('code')}' is not an answer to '{code}' in the CodeSystem"
                yield f"{where}.answerOption[{index}].valueCoding", message

    def defined(self, question: Asked) -> Iterator[tuple[str, str]]:
        """An item inside a definition-based group: its definition names an element of the resource built, and
        the codes it may give that resource (`code.coding`) are ones the rules count."""
        item, where, context = question.item, question.path, str(question.context)
        definition = item.get("definition")
        if not isinstance(definition, str):
            return
        base, _, element = definition.partition("#")
        if not (base == f"{CORE_DEFINITIONS}{context}" and element.startswith(f"{context}.")) and not (
            base.startswith(CORE_DEFINITIONS) and element.startswith("Extension.")
        ):
            yield (
                f"{where}.definition",
                (
                    f"a definition inside a {context} group names an element of {CORE_DEFINITIONS}{context} "
                    f"(or of an extension's definition), as {CORE_DEFINITIONS}{context}#{context}.code.coding"
                ),
            )
            return
        if element != f"{context}.code.coding":
            return
        read = self.read_as.get(context, set())
        for index, option in enumerate(item.get("answerOption") or ()):
            coding = option.get("valueCoding") or {}
            system, code = str(coding.get("system") or ""), str(coding.get("code") or "")
            if not any(
                self.valuesets[name].contains(system, code) for name in read if name in self.valuesets
            ):
                message = f"no value set the rules read as a {context} contains {system}|{code}"
                yield f"{where}.answerOption[{index}].valueCoding", message

    def unasked(self, asked_codes: set[str]) -> dict[str, str]:
        """Local findings the rules read as Observation values (or components) that no item asks: code ->
        the value set that reads it."""
        read = sorted(self.read_as.get("Observation", set()) | self.components)
        missing = {}
        for code, concept in self.concepts.items():
            if (
                not concept_property(concept, "value-type")
                or concept_property(concept, "parent")
                or code in asked_codes
            ):
                continue
            for name in read:
                if name in self.valuesets and self.valuesets[name].contains(canonical.LOCAL_CODES, code):
                    missing[code] = name
                    break
        return missing


def questionnaire_problems(
    questionnaires: list[tuple[str, dict[str, Any]]],
    codesystems: Iterable[dict[str, Any]],
    valuesets: dict[str, ValueSet],
    fact_rules: dict[str, Any],
    plan_rules: dict[str, list[Any]],
) -> list[Problem]:
    """Every problem of the loaded Questionnaires, each with its file, path and reason."""
    return list(QuestionnaireCheck(codesystems, valuesets, fact_rules, plan_rules).problems(questionnaires))


def _codings(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Coding-shaped object in a resource, with its path."""
    if isinstance(node, dict):
        if isinstance(node.get("system"), str) and "code" in node:
            yield path, node
        for key, value in node.items():
            yield from _codings(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _codings(value, f"{path}[{index}]")
