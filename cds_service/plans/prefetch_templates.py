"""Prefetch templates derived from what the rules read, so discovery asks for exactly that data.

Each `select` names a resource type (and maybe a value set); each type becomes one search by patient. An
Observation search is narrowed to the codes the rules ask for when every value set involved is a plain code
list. Templates stay inside the CDS Hooks 2.0 query subset: type search, a reference and token equality.
"""

from __future__ import annotations

from typing import Any

from .model import Plan
from .reads import transitive_reads
from .terminology import ValueSet

NARROWED_BY_CODE = frozenset({"Observation"})


def _key(resource_type: str) -> str:
    return resource_type[0].lower() + resource_type[1:] + "s"


def _template(resource_type: str, valuesets: list[ValueSet | None]) -> str:
    template = f"{resource_type}?patient={{{{context.patientId}}}}"
    if (
        resource_type in NARROWED_BY_CODE
        and valuesets
        and all(vs is not None and vs.exact_only for vs in valuesets)
    ):
        codes = sorted({f"{system}|{code}" for vs in valuesets if vs for system, code in vs.include.codes})
        template += "&code=" + ",".join(codes)
    return template


def derive_prefetch(
    plans: list[Plan],
    plan_rules: dict[str, list[Any]],
    fact_rules: dict[str, Any],
    valuesets: dict[str, ValueSet],
) -> dict[str, dict[str, str]]:
    """hook -> prefetch key -> template, for every hook some plan serves."""
    by_hook: dict[str, set[tuple[str, str | None]]] = {}
    for plan in plans:
        reads = transitive_reads(plan_rules.get(plan.id, ()), fact_rules, plan_rules)
        for hook in plan.hooks():
            by_hook.setdefault(hook, set()).update(
                (read.resource_type, read.valueset or None) for read in reads if not read.draft
            )
    prefetch: dict[str, dict[str, str]] = {}
    for hook, pairs in by_hook.items():
        types = sorted({resource_type for resource_type, _ in pairs})
        prefetch[hook] = {
            _key(resource_type): _template(
                resource_type, [valuesets.get(vs) if vs else None for t, vs in pairs if t == resource_type]
            )
            for resource_type in types
        }
    return prefetch
