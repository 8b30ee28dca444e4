"""The state of one evaluation: the record, T0, parameters, and the memo of facts already computed.

Compiled JSON-Logic only receives `data`, which iterators such as `filter` replace with the current item,
so the FHIR-aware operators reach the evaluation through a context variable instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..record import Entry, PatientRecord
from ..types import Evaluator
from .describe import RecordNames
from .kleene import truth
from .model import Criterion, Fact
from .terminology import ValueSet

_current: ContextVar[Evaluation] = ContextVar("cds_evaluation")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A computed value, the references of the records it rests on, and the facts it read that are unknown."""

    value: Any
    evidence: frozenset[str]
    missing: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Trace:
    evidence: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Evaluation:
    record: PatientRecord
    t0: date
    hook: str
    params: dict[str, Any]
    facts: dict[str, Fact]
    draft_dependent: frozenset[str]
    valuesets: dict[str, ValueSet]
    drafts: list[Entry] = field(default_factory=list)
    draft: Entry | None = None
    memo: dict[str, Outcome] = field(default_factory=dict)
    draft_memo: dict[str, Outcome] = field(default_factory=dict)
    select_memo: dict[tuple[str, str | None, str | None], list[Entry]] = field(default_factory=dict)
    criteria: tuple[Criterion, ...] = ()
    criterion_memo: dict[int, tuple[Outcome, bool]] = field(default_factory=dict)
    plan_criteria: dict[str, tuple[Criterion, ...]] = field(default_factory=dict)
    record_names: RecordNames = field(default_factory=lambda: RecordNames({}))  # how cards name records
    _traces: list[_Trace] = field(default_factory=list)
    _reading: set[str] = field(default_factory=set)

    def fact(self, name: str) -> Any:
        memo = self.draft_memo if name in self.draft_dependent else self.memo
        outcome = memo.get(name)
        if outcome is None:
            outcome = self.measure(self.facts[name].compiled)
            memo[name] = outcome
        if self._traces:
            trace = self._traces[-1]
            trace.evidence.update(outcome.evidence)
            if outcome.value is None:  # report the root cause: the deepest unknown facts
                trace.missing.update(outcome.missing or {name})
        return outcome.value

    def measure(self, compiled: Evaluator) -> Outcome:
        """Evaluate while tracing: the evidence is the records in the value, else those of the facts it
        read; `missing` names the unknown facts at the root of any unknown fact it read."""
        self._traces.append(_Trace())
        try:
            value = compiled(None)
        finally:
            trace = self._traces.pop()
        direct = references(value)
        evidence = frozenset(direct if direct is not None else trace.evidence)
        return Outcome(value, evidence, frozenset(trace.missing))

    def focus(self, draft: Entry | None, criteria: tuple[Criterion, ...]) -> None:
        """Evaluate the next plan or draft order: what reads the draft or the criteria is computed afresh."""
        if draft is self.draft and criteria is self.criteria:
            return
        self.draft = draft
        self.draft_memo = {}
        self.criteria = criteria
        self.criterion_memo = {}

    def assess(self, criterion: Criterion) -> tuple[Outcome, bool]:
        """A criterion's outcome (True met, False unmet, None not documented) and whether it is required."""
        found = self.criterion_memo.get(id(criterion))
        if found is None:
            outcome = self.measure(criterion.expression)
            value = truth(outcome.value)
            required = criterion.required_when is None or truth(criterion.required_when(None)) is not False
            found = (Outcome(value, outcome.evidence, outcome.missing), required)
            self.criterion_memo[id(criterion)] = found
        return found

    def criterion(self, code: str) -> bool:
        """True only when the criterion is met: unmet and not documented both read as false here."""
        for criterion in self.criteria:
            if criterion.code == code:
                return self.assess(criterion)[0].value is True
        return False

    def unmet(self) -> list[str]:
        """Codes of the required criteria not met or not documented, in the order they are declared, each
        followed by its unmet sub-items in parentheses when it has a breakdown: `R2(C1,C7)`."""
        return self._unmet(self.criteria)

    def unmet_of(self, plan: str) -> list[str] | None:
        """The same for another plan's criteria (unknown if they read this very list: a cycle)."""
        if plan in self._reading:
            return None
        self._reading.add(plan)
        try:
            return self._unmet(self.plan_criteria[plan])
        finally:
            self._reading.discard(plan)

    def _unmet(self, criteria: tuple[Criterion, ...]) -> list[str]:
        unmet = []
        for criterion in criteria:
            outcome, required = self.assess(criterion)
            if required and outcome.value is not True:
                parts = criterion.breakdown(None) if criterion.breakdown is not None else None
                unmet.append(f"{criterion.code}({','.join(parts)})" if parts else criterion.code)
        return unmet


def references(value: Any) -> set[str] | None:
    if isinstance(value, Entry):
        return {value.reference}
    if isinstance(value, list) and all(isinstance(item, Entry) for item in value):
        return {item.reference for item in value}  # an empty selection rests on no record
    return None


def current() -> Evaluation:
    return _current.get()


@contextmanager
def activated(evaluation: Evaluation) -> Iterator[Evaluation]:
    token = _current.set(evaluation)
    try:
        yield evaluation
    finally:
        _current.reset(token)
