"""FHIR-aware JSON-Logic operators: the vocabulary rule authors use to read a patient record.

The clinical engine makes each of them unknown when an argument is unknown (`kleene`), so that missing
data surfaces as "not documented" instead of quietly passing a comparison. Constant arguments (resource
types, value set names, profiles, fact names) are checked when the rule is compiled, so a typo fails
`cds-service validate`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, timedelta
from typing import Any

from ..logic import LogicError, Node, Operation
from ..record import Entry, profile_test
from ..record.dates import parse_date
from ..types import Evaluator
from .evaluation import current
from .resource_types import is_resource_type, search_parameters
from .terminology import ValueSet
from .units import convert


def _constant_str(node: Node, path: str, what: str) -> str:
    if not node.is_constant or not isinstance(node.value, str):
        raise LogicError(f"{what} must be a constant string", path)
    return node.value


def _as_date(value: Any) -> date | None:
    return value.day if isinstance(value, Entry) else parse_date(value)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


class Vocabulary:
    """Builds the operator table, knowing the names a rule may refer to (facts, value sets, parameters)."""

    def __init__(
        self,
        facts: Collection[str],
        valuesets: Collection[str],
        params: Collection[str],
        criteria: Collection[str] = (),
        plans: Collection[str] = (),
    ) -> None:
        self.facts = facts
        self.valuesets = valuesets
        self.params = params
        self.criteria = criteria
        self.plans = plans

    def operations(self) -> dict[str, Operation]:
        def one(func: Evaluator) -> Operation:
            return Operation(func=func, min_args=1, max_args=1)

        return {
            "fact": Operation(build=self._fact, min_args=1, max_args=1),
            "param": Operation(build=self._param, min_args=1, max_args=1),
            "select": Operation(build=self._select, min_args=1, max_args=3),
            "drafts": Operation(build=self._drafts, min_args=0, max_args=1),
            "draft": Operation(build=self._draft, min_args=0, max_args=0),
            "within_days": Operation(func=_within_days, min_args=2, max_args=2),
            "after": Operation(func=_after, min_args=2, max_args=2),
            "latest": one(lambda items: _extreme(items, max)),
            "earliest": one(lambda items: _extreme(items, min)),
            "date": one(lambda item: _iso(_as_date(item))),
            "days_since": one(_days_since),
            "days_between": Operation(func=_days_between, min_args=2, max_args=2),
            "count": one(lambda items: None if items is None else len(items)),
            "dates": one(_dates),
            "add_days": Operation(func=_add_days, min_args=2, max_args=2),
            "hook": Operation(build=lambda args, path: lambda data: current().hook, min_args=0, max_args=0),
            "span_days": one(_span_days),
            "value": Operation(func=_value, min_args=1, max_args=4),
            "code_in": Operation(build=self._code_in, min_args=2, max_args=3),
            "component": Operation(build=self._component, min_args=2, max_args=2),
            "unmet": Operation(build=self._unmet, min_args=0, max_args=1),
        } | self._criteria_operations()

    def _criteria_operations(self) -> dict[str, Operation]:
        """A plan's own criteria belong to it, so facts (shared by all plans) cannot read them by code."""
        if not self.criteria:
            return {}
        return {"criterion": Operation(build=self._criterion, min_args=1, max_args=1)}

    def _unmet(self, args: list[Node], path: str) -> Evaluator:
        """`{"unmet": []}`: this plan's unmet required criteria; `{"unmet": "plan-id"}`: another plan's, so
        a criterion such as "conservative care complete" follows that plan's checklist, written once."""
        if not args:
            if not self.criteria:
                raise LogicError(
                    'a fact must name the plan whose criteria it reads: {"unmet": "plan-id"}', path
                )
            return lambda data: current().unmet()
        plan = _constant_str(args[0], path, "a plan definition id")
        if plan not in self.plans:
            raise LogicError(f"unknown plan definition '{plan}'; known: {sorted(self.plans)}", path)
        return lambda data: current().unmet_of(plan)

    def _fact(self, args: list[Node], path: str) -> Evaluator:
        name = _constant_str(args[0], path, "a fact name")
        if name not in self.facts:
            raise LogicError(f"unknown fact '{name}'", path)
        return lambda data: current().fact(name)

    def _param(self, args: list[Node], path: str) -> Evaluator:
        name = _constant_str(args[0], path, "a parameter name")
        if name not in self.params:
            raise LogicError(f"unknown parameter '{name}'", path)
        return lambda data: current().params[name]

    def _valueset(self, node: Node, path: str) -> str | None:
        if node.is_constant and node.value is None:
            return None
        name = _constant_str(node, path, "a value set")
        if name not in self.valuesets:
            raise LogicError(f"unknown value set '{name}'", path)
        return name

    def _select(self, args: list[Node], path: str) -> Evaluator:
        resource_type = _constant_str(args[0], path, "a resource type")
        if not is_resource_type(resource_type):
            raise LogicError(f"'{resource_type}' is not a FHIR R4 resource type", path)
        if "patient" not in search_parameters(resource_type):
            raise LogicError(
                f"{resource_type} cannot be searched by patient in FHIR R4, so no prefetch can ask for it",
                path,
            )
        valueset = self._valueset(args[1], path) if len(args) > 1 else None
        profile = _constant_str(args[2], path, "a status profile") if len(args) > 2 else None
        test = profile_test(resource_type, profile)
        if test is None:
            raise LogicError(f"unknown status profile '{profile}' for {resource_type}", path)
        key = (resource_type, valueset, profile)

        def select(data: Any) -> list[Entry]:
            evaluation = current()
            found = evaluation.select_memo.get(key)
            if found is None:
                record = evaluation.record
                if valueset is None:
                    candidates = record.of_type(resource_type)
                else:
                    members = evaluation.valuesets[valueset]
                    coded = (
                        record.coded(resource_type)  # text terms can match any record of the type
                        if members.text_terms
                        else record.coded(resource_type, members.include.codes, members.include.prefixes)
                    )
                    candidates = record.entries([c for c in coded if members.accepts(c.codes, c.text)])
                found = [entry for entry in candidates if test(entry, evaluation.t0)]
                evaluation.select_memo[key] = found
            return found

        return select

    def _drafts(self, args: list[Node], path: str) -> Evaluator:
        valueset = self._valueset(args[0], path) if args else None

        def drafts(data: Any) -> list[Entry]:
            evaluation = current()
            if valueset is None:
                return list(evaluation.drafts)
            return [entry for entry in evaluation.drafts if evaluation.valuesets[valueset].matches(entry)]

        return drafts

    def _draft(self, args: list[Node], path: str) -> Evaluator:
        return lambda data: current().draft

    def _criterion(self, args: list[Node], path: str) -> Evaluator:
        code = _constant_str(args[0], path, "a criterion code")
        if code not in self.criteria:
            raise LogicError(
                f"unknown criterion '{code}' (criteria are declared on the PlanDefinition)", path
            )
        return lambda data: current().criterion(code)

    def _code_in(self, args: list[Node], path: str) -> Evaluator:
        item = args[0].evaluate
        valueset = self._valueset(args[1], path)
        if valueset is None:
            raise LogicError("code_in needs a value set", path)
        # `{"code_in": [resource, "ValueSet", "bodySite"]}`: the codes of another CodeableConcept element of
        # the resource (a procedure's body site: a generic "spinal fusion" is lumbar only at a lumbar site)
        element = _constant_str(args[2], path, "a resource element") if len(args) > 2 else None

        def code_in(data: Any) -> bool | None:
            value = item(data)
            if value is None:
                return None
            members = current().valuesets[valueset]
            if isinstance(value, Entry) and element is not None:
                return _element_in(value.resource.get(element), members)
            if isinstance(value, Entry):
                concept = value.resource.get("valueCodeableConcept") or {}
                codings = concept.get("coding") or ()
                if value.type == "Observation" and codings:
                    return any(members.contains(c.get("system", ""), c.get("code", "")) for c in codings)
                return members.matches(value)
            return isinstance(value, str) and members.has_code(value)

        return code_in

    def _component(self, args: list[Node], path: str) -> Evaluator:
        """`{"component": [observation, "ValueSet"]}`: the value of the Observation's first component whose
        code is in the value set (a number, a boolean, a text or a code, as `value` reads an Observation),
        else unknown: a diagnostic block's `block-type`, for instance (V2-15)."""
        item = args[0].evaluate
        valueset = self._valueset(args[1], path)
        if valueset is None:
            raise LogicError("component needs a value set", path)

        def component(data: Any) -> Any:
            value = item(data)
            if not isinstance(value, Entry):
                return None
            members = current().valuesets[valueset]
            for part in value.resource.get("component") or ():
                code = part.get("code") if isinstance(part, dict) else None
                if isinstance(code, dict) and _element_in(code, members):
                    return _element_value(part)
            return None

        return component


def _element_value(element: dict[str, Any]) -> Any:
    """The value of an Observation component: a number, a boolean, a text or a code."""
    quantity = element.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        return quantity["value"]
    for key in ("valueInteger", "valueDecimal", "valueBoolean", "valueString"):
        if key in element:
            return element[key]
    concept = element.get("valueCodeableConcept")
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and "code" in coding:
                return coding["code"]
    return None


def _element_in(element: Any, members: ValueSet) -> bool:
    """Whether a CodeableConcept element (or any of a list of them) has a code, or a text the value set's
    text-match terms find, in the value set; an absent element is not in it."""
    for concept in element if isinstance(element, list) else [element]:
        if not isinstance(concept, dict):
            continue
        codings = [c for c in concept.get("coding") or () if isinstance(c, dict)]
        if any(members.contains(str(c.get("system") or ""), str(c.get("code") or "")) for c in codings):
            return True
        texts = [concept.get("text"), *(c.get("display") for c in codings)]
        words = " ".join(text for text in texts if isinstance(text, str)).lower()
        if words and any(term in words for term in members.text_terms):
            return True
    return False


def _within_days(items: list[Entry] | None, days: Any) -> list[Entry] | None:
    if items is None or not isinstance(days, int | float):
        return None
    since = current().t0 - timedelta(days=days)
    return [entry for entry in items if entry.day is not None and entry.day >= since]


def _after(items: list[Entry] | None, anchor: Any) -> list[Entry] | None:
    start = _as_date(anchor)
    if items is None or start is None:
        return None
    return [entry for entry in items if entry.day is not None and entry.day > start]


def _extreme(items: list[Entry] | None, pick: Callable[..., Entry]) -> Entry | None:
    dated = [entry for entry in items or () if entry.instant is not None]
    return pick(dated, key=Entry.recency) if dated else None


def _days_since(value: Any) -> int | None:
    moment = _as_date(value)
    return None if moment is None else (current().t0 - moment).days


def _days_between(first: Any, second: Any) -> int | None:
    start, end = _as_date(first), _as_date(second)
    return None if start is None or end is None else (end - start).days


def _dates(items: list[Entry] | None) -> list[str] | None:
    """The distinct dates of the items, oldest first (several procedures on one day are one surgery)."""
    if items is None:
        return None
    return sorted({entry.day.isoformat() for entry in items if entry.day is not None})


def _add_days(value: Any, days: Any) -> str | None:
    moment = _as_date(value)
    if moment is None or not isinstance(days, int | float) or isinstance(days, bool):
        return None
    return (moment + timedelta(days=days)).isoformat()


def _span_days(items: list[Entry] | Entry | None) -> int | None:
    if isinstance(items, Entry):
        items = [items]
    moments = [moment for entry in items or () for moment in (entry.day, entry.end) if moment is not None]
    return (max(moments) - min(moments)).days if moments else None


def _value(item: Any, unit: Any = None, other_unit: Any = None, factor: Any = None) -> Any:
    """The value of an Observation: a number in `unit` when given, a boolean, or a code. A quantity in
    `other_unit` is multiplied by `factor`, for analyte-specific conversions such as vitamin D nmol/L."""
    if not isinstance(item, Entry):
        return None
    resource = item.resource
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
        if unit is None:
            return quantity["value"]
        source = quantity.get("code") or quantity.get("unit")
        if source == other_unit and isinstance(factor, int | float):
            return quantity["value"] * factor
        return convert(quantity["value"], source, unit)
    for key in ("valueInteger", "valueDecimal", "valueBoolean", "valueString"):
        if key in resource:
            return resource[key]
    concept = resource.get("valueCodeableConcept")
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and "code" in coding:
                return coding["code"]
    return None
