"""StructureDefinitions of this project's own extensions, generated from one table.

FHIR tooling knows an extension only by its definition: without one, the HL7 validator refuses our facts and
criteria (HAPI lets them pass as "unknown") and nothing checks their value types. The loader decides what
these extensions mean (`canonical.EXTENSIONS`, `canonical.CRITERION_PARTS`), so their definitions are written
here beside it, not as JSON a rule author could let drift; the FHIR package ships them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import canonical

EXTENSION_BASE = "http://hl7.org/fhir/StructureDefinition/Extension"
PUBLISHER = "Post-fusion pain CDS project"


@dataclass(frozen=True, slots=True)
class Part:
    """A sub-extension of a complex extension: its url, value types (or parts) and cardinality."""

    name: str
    short: str
    types: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()
    min: int = 0
    max: str = "1"


@dataclass(frozen=True, slots=True)
class Definition:
    """One extension: where it may appear, and a value of `types` or, when complex, its `parts`."""

    url: str
    title: str
    description: str
    contexts: tuple[str, ...]
    types: tuple[str, ...] = ()
    parts: tuple[Part, ...] = ()
    max: str = "*"

    @property
    def id(self) -> str:
        return self.url.rsplit("/", 1)[-1]


JSON_LOGIC = f"an Expression in {canonical.LANGUAGE}"
DEFINITIONS = (
    Definition(
        canonical.FACT,
        "Fact",
        f"A named fact of a Library: {JSON_LOGIC} over the patient's record (`name`, `description`, "
        "`expression`), which criteria, card conditions and templates refer to by name.",
        ("Library",),
        types=("Expression",),
    ),
    Definition(
        canonical.CRITERION,
        "Criterion",
        "One line of a card's checklist: what the plan definition checks, what a summary says when it is "
        "not met, and when it counts.",
        ("PlanDefinition",),
        parts=(
            Part("code", "The criterion's id, reported in the card's checklist", ("string",), min=1),
            Part("label", "How the checklist names it (the code when absent)", ("string",)),
            Part("missing", "What a summary says when it is not met ('no CBT')", ("string",), min=1),
            Part("expression", f"Whether it is met: {JSON_LOGIC}", ("Expression",), min=1),
            Part("requiredWhen", f"When it counts: {JSON_LOGIC}; unknown counts", ("Expression",)),
            Part("not-required", "Why it does not apply when requiredWhen is false", ("string",)),
            Part("citation", "The source the criterion rests on, shown on the rule page", ("string",)),
            Part("breakdown", f"The unmet sub-item codes: {JSON_LOGIC}", ("Expression",)),
        ),
    ),
    Definition(
        canonical.OVERRIDE_REASON,
        "Override reason",
        "One reason of the shared list a clinician may give for overriding a warning (code and display).",
        ("Library",),
        types=("Coding",),
    ),
    Definition(
        canonical.SOURCE_LABEL,
        "Source label",
        "The card's `source.label`: the guideline basis of the plan definition.",
        ("PlanDefinition",),
        types=("string",),
        max="1",
    ),
    Definition(
        canonical.REQUEST_CATEGORY,
        "Request category",
        "The category of the draft order a suggestion creates from this ActivityDefinition.",
        ("ActivityDefinition",),
        types=("CodeableConcept",),
        max="1",
    ),
    Definition(
        canonical.TEXT_MATCH,
        "Text match",
        "A term matched, case-insensitively, in the text or display of a coded element, for records that "
        "arrive uncoded or with codes the value set does not list.",
        ("ValueSet",),
        types=("string",),
    ),
    Definition(
        canonical.PARAMETER_MIN,
        "Parameter minimum",
        "The smallest value (inclusive) a site may give this numeric Library parameter.",
        ("ParameterDefinition",),
        types=("integer", "decimal"),
        max="1",
    ),
    Definition(
        canonical.PARAMETER_MAX,
        "Parameter maximum",
        "The largest value (inclusive) a site may give this numeric Library parameter.",
        ("ParameterDefinition",),
        types=("integer", "decimal"),
        max="1",
    ),
    Definition(
        canonical.PARAMETER_ALLOWED,
        "Parameter allowed value",
        "One value a site may give this string Library parameter.",
        ("ParameterDefinition",),
        types=("string",),
    ),
    Definition(
        canonical.STATUS_PROFILE,
        "Status profile",
        "Which records of the type count for the rules (a named status profile of the service), beyond the "
        "status codeFilter.",
        ("DataRequirement",),
        types=("code",),
        max="1",
    ),
    Definition(
        canonical.CRITERION_STATE,
        "Criterion state",
        "One checklist line of an applied plan definition: the criterion, its status, the records it rests "
        "on, and the status of its sub-items.",
        ("RequestGroup.action",),
        parts=(
            Part("id", "The criterion's code", ("string",), min=1),
            Part("status", "met, not-met, not-documented or not-required", ("code",), min=1),
            Part("evidence", "A record the status rests on", ("Reference",), max="*"),
            Part(
                "part",
                "A sub-item of the criterion and its status",
                parts=(
                    Part("id", "The sub-item's code", ("string",), min=1),
                    Part("status", "met, not-met or not-documented", ("code",), min=1),
                ),
                max="*",
            ),
        ),
    ),
    Definition(
        canonical.DRAFT_ORDER,
        "Draft order",
        "The draft order an applied action is about, when the plan definition is evaluated per draft order.",
        ("RequestGroup.action",),
        types=("Reference",),
        max="1",
    ),
    Definition(
        canonical.SITE_ADDITION,
        "Site addition",
        "Marks a value set include that a site's own file added to the bundled value set, naming that file.",
        ("ValueSet.compose.include",),
        types=("string",),
        max="1",
    ),
)


def structure_definitions(version: str, date: str | None) -> list[dict[str, Any]]:
    """Every definition as an R4 StructureDefinition (differential only; FHIR tooling derives the
    snapshot), versioned and dated with the package."""
    return [_structure_definition(definition, version, date) for definition in DEFINITIONS]


def _structure_definition(definition: Definition, version: str, date: str | None) -> dict[str, Any]:
    root = {
        "id": "Extension",
        "path": "Extension",
        "short": definition.title,
        "definition": definition.description,
        "min": 0,
        "max": definition.max,
    }
    return {
        "resourceType": "StructureDefinition",
        "id": definition.id,
        "url": definition.url,
        "version": version,
        "name": definition.title.title().replace(" ", ""),
        "title": definition.title,
        "status": "active",
        **({"date": date} if date else {}),
        "publisher": PUBLISHER,
        "description": definition.description,
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": context} for context in definition.contexts],
        "type": "Extension",
        "baseDefinition": EXTENSION_BASE,
        "derivation": "constraint",
        "differential": {"element": [root, *_elements("Extension", "Extension", definition.url, definition)]},
    }


def _elements(element_id: str, path: str, url: str, node: Definition | Part) -> list[dict[str, Any]]:
    """The differential below one (sub-)extension: its slices or no sub-extensions, its url, its value."""
    elements: list[dict[str, Any]] = []
    if node.parts:
        elements.append(
            {
                "id": f"{element_id}.extension",
                "path": f"{path}.extension",
                "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "closed"},
            }
        )
        for part in node.parts:
            slice_id = f"{element_id}.extension:{part.name}"
            elements.append(
                {
                    "id": slice_id,
                    "path": f"{path}.extension",
                    "sliceName": part.name,
                    "short": part.short,
                    "definition": part.short,
                    "min": part.min,
                    "max": part.max,
                }
            )
            elements.extend(_elements(slice_id, f"{path}.extension", part.name, part))
    else:
        elements.append({"id": f"{element_id}.extension", "path": f"{path}.extension", "max": "0"})
    elements.append({"id": f"{element_id}.url", "path": f"{path}.url", "fixedUri": url})
    value: dict[str, Any] = {"id": f"{element_id}.value[x]", "path": f"{path}.value[x]"}
    if node.parts:
        value["max"] = "0"
    else:
        value.update(min=1, type=[{"code": kind} for kind in node.types])
    elements.append(value)
    return elements
