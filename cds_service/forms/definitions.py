"""SDC definition-based extraction: a value written at the element an item's `definition` names.

A definition is a StructureDefinition URL, `#`, and an element id, walked into data types as SDC allows:
`…/StructureDefinition/Procedure#Procedure.performed[x]:performedPeriod.start`, `…#Procedure.code.coding`.
A definition into an extension's own StructureDefinition
(`…/StructureDefinition/procedure-schedule#Extension.value[x]:valueTiming.repeat.count`) writes that extension
on the resource built; SDC would ask for a profile with a slice, and this reading spares one. Whether an
element repeats is read from the FHIR R4 models, so a Coding is appended to `code.coding` or `meta.tag`.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from ..plans.questionnaires import CORE_DEFINITIONS, EXTRACT_VALUE

_MODEL_TYPE = re.compile(r"\b([A-Z]\w*)Type\b")  # fhir.resources names an element's type `abc.PeriodType`


def put(resource: dict[str, Any], definition: str, value: Any) -> None:
    """Write `value` into `resource` at the element `definition` names; ValueError if it names none."""
    base, _, element = definition.partition("#")
    root, *segments = element.split(".")
    names = [segment.partition(":")[2] or segment for segment in segments]  # `performed[x]:performedPeriod`
    kind = str(resource["resourceType"])
    if root == kind and base == f"{CORE_DEFINITIONS}{kind}":
        _write(resource, kind, names, value)
    elif root == "Extension" and base.startswith(CORE_DEFINITIONS):
        extensions = resource.setdefault("extension", [])
        extension = next((e for e in extensions if e.get("url") == base), None)
        if extension is None:
            extension = {"url": base}
            extensions.append(extension)
        _write(extension, "Extension", names, value)
    else:
        raise ValueError(f"definition {definition} names no element of a {kind}")


def fixed_values(item: dict[str, Any]) -> list[tuple[str, Any]]:
    """(definition, value) of each `definitionExtractValue` with a `fixed-value` on an item."""
    found = []
    for extension in item.get("extension") or ():
        if not isinstance(extension, dict) or extension.get("url") != EXTRACT_VALUE:
            continue
        parts = {part.get("url"): part for part in extension.get("extension") or () if isinstance(part, dict)}
        definition = parts.get("definition", {})
        target = definition.get("valueUri") or definition.get("valueCanonical")
        fixed = parts.get("fixed-value", {})
        value = next((v for k, v in fixed.items() if k.startswith("value")), None)
        if not isinstance(target, str) or value is None:
            raise ValueError(
                "definitionExtractValue needs a definition and a fixed-value (expressions: none)"
            )
        found.append((target, value))
    return found


def _write(node: dict[str, Any], model: str, names: list[str], value: Any) -> None:
    for position, name in enumerate(names):
        repeats, child = _element(model, name)
        if position == len(names) - 1:
            if repeats:
                node.setdefault(name, []).append(value)
            else:
                node[name] = value
            return
        if repeats:  # walking through a repeating element writes into its last repetition
            items = node.setdefault(name, [])
            if not items:
                items.append({})
            node = items[-1]
        else:
            node = node.setdefault(name, {})
        model = child


@cache
def _element(model: str, name: str) -> tuple[bool, str]:
    """(repeats, the element's own model name or "" for a primitive) of `model.name`."""
    try:
        fields = get_fhir_model_class(model).model_fields
    except KeyError as error:
        raise ValueError(f"{model} is not a FHIR R4 type with elements") from error
    if name not in fields:
        raise ValueError(f"{model} has no element '{name}'")
    annotation = str(fields[name].annotation)
    found = _MODEL_TYPE.search(annotation)
    return "List[" in annotation, found.group(1) if found else ""
