"""Real facts of the bundled plan definitions, written by hand in Python with the same three-valued
meaning, for the logic benchmark: the floor the generated code is measured against.

Each function reads the facts it depends on from the evaluation (memoised, as the engine does), so the
benchmark times the logic itself. `logic_bench.py` checks that each one agrees with the engine on every
fixture patient before timing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cds_service.plans.evaluation import Evaluation

HandWritten = Callable[[Evaluation], Any]


def c4_required(ev: Evaluation) -> Any:
    """{"and": [{"!": contraindicated}, {"or": [param, {"!!": radicular}]}]} (V2-14 waivers)"""
    contraindicated = ev.fact("nsaidContraindicated")
    first = None if contraindicated is None else not contraindicated
    if first is False:
        return False
    flag = ev.params["nsaid.requiredWithoutRadicular"]
    if flag:
        second = flag
    else:
        radicular = ev.fact("radicular")
        second = None if radicular is None else bool(radicular)
    if second is not None and not second:
        return second
    return None if first is None or second is None else second


def current_smoker(ev: Evaluation) -> Any:
    """The most recent of the smoking-status observation and a tobacco-use condition decides."""
    observed = ev.fact("smokingObservation")
    condition = ev.fact("smokerCondition")
    if observed is None:
        return condition is not None
    if condition is None:
        return ev.fact("observedSmoker")
    if observed.day is None or condition.day is None:
        return None
    return ev.fact("observedSmoker") if observed.day >= condition.day else True


def scs_conservative_unmet(ev: Evaluation) -> Any:
    """Conservative care unmet apart from C7, plus INT when no interventional procedure followed fusion."""
    unmet = ev.fact("conservativeCareUnmet")
    procedures = ev.fact("interventionalProcedures")
    if unmet is None or procedures is None:
        return None
    return [code for code in unmet if code != "C7"] + ([] if procedures else ["INT"])


_STRUCTURAL = (
    ("pseudarthrosis", "pseudarthrosis"),
    ("hardwareFailure", "hardware failure"),
    ("adjacentSegmentDiseaseWithInstability", "adjacent segment disease with instability"),
    ("painfulDisc", "painful disc within fusion mass"),
    ("flatback", "flatback"),
    ("nerveCompression", "nerve compression"),
)


def structural_pathology(ev: Evaluation) -> Any:
    """The first structural finding present, in order of precedence."""
    for name, label in _STRUCTURAL:
        value = ev.fact(name)
        if value is None:
            return None
        if value:
            return label
    return ""


def revision_success_pct(ev: Evaluation) -> Any:
    """Expected success of the next operation by how many came before."""
    number = ev.fact("surgeryNumber")
    if number is None:
        return None
    if number <= 1:
        return 50
    return {2: 30, 3: 15}.get(number, 5)


FACTS: dict[str, HandWritten] = {
    "c4Required": c4_required,
    "currentSmoker": current_smoker,
    "scsConservativeUnmet": scs_conservative_unmet,
    "structuralPathology": structural_pathology,
    "revisionSuccessPct": revision_success_pct,
}
