"""What the rules read, found by walking their JSON-Logic without running it.

One walk serves the prefetch templates, the Libraries' `dataRequirement`, `$data-requirements` and the
integrator's page, so none of them can drift from the logic that runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .rulewalk import walk

ITERATORS = frozenset({"some", "all", "none", "filter", "map"})  # `{"var": ""}` in the body is an item
KEEPS_ITEMS = frozenset({"latest", "earliest", "within_days", "after", "filter"})  # result: items of args[0]


@dataclass(frozen=True, slots=True, order=True)
class Read:
    """One kind of record a rule reads: a resource type, narrowed by a value set and a status profile; a
    draft order comes in the hook's context instead of from the record."""

    resource_type: str
    valueset: str = ""  # a value set name; "" for any code
    profile: str = ""  # a status profile name; "" for the type's default
    draft: bool = False
    lookback: str = ""  # the parameter of a `within_days` window the selection is read in, if any


@dataclass(slots=True)
class ObservedValues:
    """How the rules read the value of the Observations of one value set."""

    units: set[str] = field(default_factory=set)  # UCUM units a quantity is read in
    answers: set[str] = field(default_factory=set)  # value sets a coded answer is tested against
    components: set[str] = field(default_factory=set)  # value sets of the components read
    tested: set[str] = field(
        default_factory=set
    )  # value sets the codes of a selection of any code must be in
    elements: set[tuple[str, str]] = field(default_factory=set)  # (element, value set) tested: a body site


def direct_reads(rule: Any, lookback: str = "") -> set[Read]:
    """The records `rule` itself selects, not those of the facts it names. A selection inside
    `{"within_days": [selection, {"param": name}]}` carries the look-back parameter's name."""
    found: set[Read] = set()
    if isinstance(rule, list):
        for part in rule:
            found |= direct_reads(part, lookback)
        return found
    if not isinstance(rule, dict):
        return found
    for operator, args in rule.items():
        args = args if isinstance(args, list) else [args]
        if operator == "select" and args and isinstance(args[0], str):
            valueset = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
            profile = args[2] if len(args) > 2 and isinstance(args[2], str) else ""
            found.add(Read(args[0], valueset, profile, lookback=lookback))
        elif operator == "drafts":
            valueset = args[0] if args and isinstance(args[0], str) else ""
            found.add(Read("draft order", valueset, draft=True))
        elif operator == "within_days" and len(args) == 2 and _param_name(args[1]):
            found |= direct_reads(args[0], _param_name(args[1]))
        else:
            found |= direct_reads(args, lookback if operator == "merge" else "")
    return found


def _param_name(rule: Any) -> str:
    name = rule.get("param") if isinstance(rule, dict) and len(rule) == 1 else None
    return name if isinstance(name, str) else ""


def merged(reads: Iterable[Read], params: dict[str, Any]) -> list[Read]:
    """One read per type, value set, profile and origin: the widest look-back window (by the parameter's
    value), or none when any read of the group has none."""
    groups: dict[tuple[str, str, str, bool], set[str]] = {}
    for read in reads:
        groups.setdefault((read.resource_type, read.valueset, read.profile, read.draft), set()).add(
            read.lookback
        )

    def days(name: str) -> int:
        value = params.get(name)
        return value if isinstance(value, int) else 0

    return [
        Read(*key, lookback="" if "" in windows else max(windows, key=days))
        for key, windows in sorted(groups.items())
    ]


def named(rule: Any, operator: str) -> Iterator[str]:
    """The constant names given to `operator` in `rule`: the facts of `fact`, the plans of `unmet`."""
    for found, args in walk(rule):
        if found == operator and args and isinstance(args[0], str):
            yield args[0]


def transitive_rules(
    rules: Iterable[Any], fact_rules: dict[str, Any], plan_rules: dict[str, list[Any]]
) -> list[Any]:
    """`rules`, the rules of the facts they name and of the plans whose criteria they read
    (`{"unmet": "plan-id"}`), to any depth, each fact and plan once."""
    pending = list(rules)
    seen: set[tuple[str, str]] = set()
    reached: list[Any] = []
    while pending:
        rule = pending.pop()
        reached.append(rule)
        for name in named(rule, "fact"):
            if name in fact_rules and ("fact", name) not in seen:
                seen.add(("fact", name))
                pending.append(fact_rules[name])
        for name in named(rule, "unmet"):
            if name in plan_rules and ("plan", name) not in seen:
                seen.add(("plan", name))
                pending.extend(plan_rules[name])
    return reached


def transitive_reads(
    rules: Iterable[Any], fact_rules: dict[str, Any], plan_rules: dict[str, list[Any]]
) -> set[Read]:
    """What `rules` read, with what the facts they name read and the plans whose criteria they read, to any
    depth."""
    return {read for rule in transitive_rules(rules, fact_rules, plan_rules) for read in direct_reads(rule)}


Source = tuple[str, str]  # (resource type, value set name or "") of the records an expression yields


class ValueReader:
    """Which selections each expression yields, and how the rules read those records: an Observation's
    value (`value` with units, `code_in` with answer sets, `component`), or the codes a selection of any code
    is then tested against (`code_in`), followed through facts and iterator bodies."""

    def __init__(self, fact_rules: dict[str, Any]) -> None:
        self.fact_rules = fact_rules
        self.memo: dict[str, frozenset[Source]] = {}
        self.values: dict[Source, ObservedValues] = {}

    def yields(self, rule: Any, item: frozenset[Source] = frozenset()) -> frozenset[Source]:
        """The selections whose records `rule` evaluates to (`item`: what `{"var": ""}` is)."""
        if not isinstance(rule, dict) or len(rule) != 1:
            return frozenset()
        ((operator, args),) = rule.items()
        args = args if isinstance(args, list) else [args]
        if operator == "select" and args and isinstance(args[0], str):
            return frozenset({(args[0], args[1] if len(args) > 1 and isinstance(args[1], str) else "")})
        if operator == "var" and args[:1] in ([""], [None]):
            return item
        if operator in KEEPS_ITEMS and args:
            return self.yields(args[0], item)
        if operator == "merge":
            return frozenset().union(*(self.yields(arg, item) for arg in args))
        if operator == "if":
            branches = [*args[1::2], *args[-1:]] if len(args) % 2 else args[1::2]  # then.., else
            return frozenset().union(*(self.yields(arg, item) for arg in branches))
        if operator == "fact" and args and isinstance(args[0], str):
            return self.of_fact(args[0])
        return frozenset()

    def of_fact(self, name: str) -> frozenset[Source]:
        if name not in self.memo:
            self.memo[name] = frozenset()  # a cycle is refused by the loader; this only ends the recursion
            self.memo[name] = self.yields(self.fact_rules.get(name))
        return self.memo[name]

    def read(self, rule: Any, item: frozenset[Source] = frozenset()) -> None:
        """Record every value read and code test in `rule`."""
        if isinstance(rule, list):
            for part in rule:
                self.read(part, item)
            return
        if not isinstance(rule, dict):
            return
        for operator, args in rule.items():
            args = args if isinstance(args, list) else [args]
            if operator in ITERATORS and len(args) >= 2:
                self.read(args[0], item)
                self.read(args[1:], self.yields(args[0], item))
                continue
            if operator in {"value", "code_in", "component"} and args:
                self.note(operator, args, self.yields(args[0], item))
            self.read(args, item)

    def note(self, operator: str, args: list[Any], sources: frozenset[Source]) -> None:
        names = {arg for arg in args[1:] if isinstance(arg, str)}
        for source in sources:
            observed = self.values.setdefault(source, ObservedValues())
            if operator == "value":
                observed.units |= names
            elif operator == "component":
                observed.components |= names
            elif len(args) == 3:  # `{"code_in": [record, "ValueSet", "bodySite"]}`: another element's codes
                observed.elements |= {(args[2], args[1])} if isinstance(args[1], str) else set()
            elif source[0] == "Observation" and len({s[0] for s in sources}) == 1:
                observed.answers |= names - {source[1]}  # an Observation's coded value
            elif not source[1]:
                observed.tested |= names  # a selection of any code, narrowed by its codes


def observed_values(rules: Iterable[Any], fact_rules: dict[str, Any]) -> dict[Source, ObservedValues]:
    """(resource type, value set) of a selection -> how the rules read its records."""
    reader = ValueReader(fact_rules)
    for rule in rules:
        reader.read(rule)
    return reader.values
