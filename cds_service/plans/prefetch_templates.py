"""Prefetch templates derived from what the rules read, so discovery asks for exactly that data.

Each `select` names a resource type (and maybe a value set); each type becomes one search by patient. An
Observation search is narrowed to the codes the rules ask for when every value set involved is a plain code
list. Templates stay inside the CDS Hooks 2.0 query subset: type search, a reference and token equality.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .model import Plan
from .rulewalk import walk
from .terminology import ValueSet

NARROWED_BY_CODE = frozenset({"Observation"})


def _reads(
    rules: Iterable[Any], fact_rules: dict[str, Any], plan_rules: dict[str, list[Any]]
) -> set[tuple[str, str | None]]:
    """(resource type, value set) pairs read by `rules` and, transitively, by the facts they use and the
    other plans whose criteria they read (`{"unmet": "plan-id"}`)."""
    pending = list(rules)
    seen: set[tuple[str, str]] = set()
    reads: set[tuple[str, str | None]] = set()
    while pending:
        for operator, args in walk(pending.pop()):
            name = args[0] if args and isinstance(args[0], str) else None
            if operator == "fact" and name in fact_rules and ("fact", name) not in seen:
                seen.add(("fact", name))
                pending.append(fact_rules[name])
            elif operator == "unmet" and name in plan_rules and ("plan", name) not in seen:
                seen.add(("plan", name))
                pending.extend(plan_rules[name])
            elif operator == "select" and args:
                reads.add((args[0], args[1] if len(args) > 1 else None))
    return reads


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
        reads = _reads(plan_rules.get(plan.id, ()), fact_rules, plan_rules)
        for hook in plan.hooks():
            by_hook.setdefault(hook, set()).update(reads)
    prefetch: dict[str, dict[str, str]] = {}
    for hook, reads in by_hook.items():
        types = sorted({resource_type for resource_type, _ in reads})
        prefetch[hook] = {
            _key(resource_type): _template(
                resource_type, [valuesets.get(vs) if vs else None for t, vs in reads if t == resource_type]
            )
            for resource_type in types
        }
    return prefetch
