"""Which synthetic patient shows which cards when its chart is opened (patient-view) on a given day: each
case's own patient-view call, run in-process on its record as prefetch, the way `load-fixtures` tells a
sandbox user whom to open."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ServiceError
from ..hooks import build_services, call_service
from ..plans.model import RuleSet
from ..types import JSONObject
from .cases import Case, prefetch_of, request_for
from .errors import label_of

PATIENT_VIEW = "patient-view"


@dataclass(frozen=True, slots=True)
class Shown:
    patient: str
    name: str
    cards: list[tuple[str, str]]  # (rule id, summary), in the order the service answers them
    refused: str = ""  # why the service refused the call, if it did


async def patient_view_cards(case: Case, ruleset: RuleSet, fhir_server: str) -> list[JSONObject] | None:
    """The cards of the case's patient-view call at its T0, or None when the case has no such call."""
    service = next(s for s in build_services(ruleset).values() if s.hook == PATIENT_VIEW)
    call = next((c for c in case.calls if c["hook"] == PATIENT_VIEW), None)
    if call is None:
        return None
    body = request_for(case, call, fhir_server, prefetch_of(case, service.prefetch))
    result = await call_service(service, ruleset, body, None, case.t0)
    cards: list[JSONObject] = result.response["cards"]
    return cards


async def shown(cases: list[Case], ruleset: RuleSet, fhir_server: str) -> list[Shown]:
    rows = []
    for case in cases:
        try:
            cards = await patient_view_cards(case, ruleset, fhir_server)
        except ServiceError as error:
            reasons = "; ".join(issue.diagnostics for issue in error.issues)
            rows.append(Shown(case.id, name_of(case), [], f"{label_of(error)}: {reasons}"))
            continue
        if cards is not None:
            found = [(card["source"]["topic"]["code"], card["summary"]) for card in cards]
            rows.append(Shown(case.id, name_of(case), found))
    return rows


def name_of(case: Case) -> str:
    """The patient's first name as written: given names, then family name."""
    patient = next((r for r in case.resources if r["resourceType"] == "Patient"), {})
    names: list[dict[str, Any]] = patient.get("name") or [{}]
    return " ".join([*names[0].get("given", []), names[0].get("family", "")]).strip()


def table(rows: list[Shown], day: str, write: Callable[[str], None]) -> None:
    """One line per card (`none` for a patient without), the patient's id and name on its first line."""
    id_width = max((len(row.patient) for row in rows), default=7)
    name_width = max((len(row.name) for row in rows), default=4)
    write(f"patient-view cards on {day}:")
    write(f"{'patient':<{id_width}}  {'name':<{name_width}}  cards")
    for row in rows:
        lines = [f"{rule}: {summary}" for rule, summary in row.cards] or [row.refused or "none"]
        write(f"{row.patient:<{id_width}}  {row.name:<{name_width}}  {lines[0]}")
        for line in lines[1:]:
            write(f"{'':<{id_width}}  {'':<{name_width}}  {line}")
    showing = sum(bool(row.cards) for row in rows)
    write(f"{showing} of {len(rows)} patients show cards at patient-view")
