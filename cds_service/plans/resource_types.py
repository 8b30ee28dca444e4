"""The FHIR resource types a rule may select, checked when it is compiled: a misspelt type would otherwise
become a prefetch template for a type no FHIR server has, and every call would answer 412."""

from __future__ import annotations

from functools import cache


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
