"""The CDS services we advertise: one per hook, built from the plan definitions that serve it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..plans.model import RuleSet
from ..protocol.request import HOOKS

SERVICE_PREFIX = "postfusion-pain"
HOOK_TITLES = {
    "patient-view": "when a chart is opened",
    "order-select": "when an order is selected",
    "order-sign": "when orders are signed",
}


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    prefetch: dict[str, str]

    def discovery(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.id,
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        if self.prefetch:
            entry["prefetch"] = dict(self.prefetch)
        return entry


def build_services(ruleset: RuleSet) -> dict[str, Service]:
    """service id -> Service, in hook order, for every hook at least one plan definition serves."""
    services = {}
    for hook in HOOKS:
        plans = ruleset.plans_for(hook)
        if not plans:
            continue
        service_id = f"{SERVICE_PREFIX}-{hook}"
        usage = " ".join(dict.fromkeys(plan.usage for plan in plans if plan.usage))
        services[service_id] = Service(
            id=service_id,
            hook=hook,
            title=f"Back pain after lumbar fusion: guidance {HOOK_TITLES[hook]}",
            description=" ".join(plan.description for plan in plans if plan.description),
            usage_requirements=usage,
            prefetch=ruleset.prefetch.get(hook, {}),
        )
    return services
