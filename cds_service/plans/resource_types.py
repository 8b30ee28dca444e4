"""The FHIR resource types a rule may select and the R4 search parameters, checked when rules load: a
misspelt type, or one that cannot be searched by patient, would otherwise become a prefetch template no
FHIR server answers, and every call would answer 412."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import orjson


@cache
def is_resource_type(name: str) -> bool:
    """True for a concrete FHIR R4 resource type (fhir.resources' R4B models, which carry every R4 type the
    rules read); False for data types, abstract bases and anything else."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.domainresource import DomainResource
    from fhir.resources.R4B.resource import Resource

    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError):
        return False
    return issubclass(model, Resource) and model not in (Resource, DomainResource)


@cache
def _search_parameters() -> dict[str, frozenset[str]]:
    """FHIR R4's search parameter codes per resource type (regenerate: scripts/r4_search_parameters.py)."""
    table = orjson.loads(files(__package__).joinpath("r4_search_parameters.json").read_bytes())["parameters"]
    return {base: frozenset(codes) for base, codes in table.items()}


def search_parameters(resource_type: str) -> frozenset[str]:
    """The parameters a FHIR R4 server may be asked to search `resource_type` by, common ones included."""
    table = _search_parameters()
    common = table["Resource"] | table["DomainResource"]
    return table.get(resource_type, frozenset()) | common


def unsearchable(template: str) -> list[str]:
    """The query parameters of a prefetch template that FHIR R4 does not define for its resource type."""
    resource_type, _, query = template.partition("?")
    known = search_parameters(resource_type)
    names = [pair.partition("=")[0].partition(":")[0] for pair in query.split("&") if pair]
    return [name for name in names if name not in known]
