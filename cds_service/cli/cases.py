"""The synthetic patient cases of fixtures/patients: put them on a FHIR server, take them off again, build
the hook requests a real EHR would send without prefetch, and compare the service's cards with the expected
ones. Used by `cds-service load-fixtures` and `cds-service smoke`, and by the integration tests."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ..config import bundled
from ..plans.cards import unmet_of_card

CASES_DIR = bundled("fixtures") / "patients"
FIXTURE_TAG = {"system": "http://postfusion-cds.org/fhir/CodeSystem/fixture", "code": "synthetic-patient"}
USER = "Practitioner/synthetic-clinician"


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    t0: datetime
    resources: list[dict[str, Any]]
    calls: list[dict[str, Any]]


def load_cases(directory: Path = CASES_DIR) -> list[Case]:
    cases = []
    for path in sorted(directory.glob("*.json")):
        data = orjson.loads(path.read_bytes())
        cases.append(
            Case(
                id=data["id"],
                t0=datetime.fromisoformat(data["t0"].replace("Z", "+00:00")),
                resources=[entry["resource"] for entry in data["bundle"]["entry"]],
                calls=data["calls"],
            )
        )
    return cases


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    meta["tag"] = [*[t for t in meta.get("tag", []) if t != FIXTURE_TAG], FIXTURE_TAG]
    return {**resource, "meta": meta}


def upload_bundle(cases: list[Case]) -> dict[str, Any]:
    """One transaction that creates or replaces every case's resources under their own ids (re-runnable)."""
    entries = [
        {
            "fullUrl": f"{r['resourceType']}/{r['id']}",
            "resource": _tagged(r),
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for case in cases
        for r in case.resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def removal_bundle(cases: list[Case]) -> dict[str, Any]:
    """One transaction that deletes what `upload_bundle` created, patients last."""
    resources = [r for case in cases for r in case.resources]
    ordered = sorted(resources, key=lambda r: r["resourceType"] == "Patient")
    entries = [{"request": {"method": "DELETE", "url": f"{r['resourceType']}/{r['id']}"}} for r in ordered]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def request_for(
    case: Case, call: dict[str, Any], fhir_server: str, prefetch: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The CDS Hooks request for one call: the data is on `fhir_server`, prefetch only as given."""
    body: dict[str, Any] = {
        "hookInstance": str(uuid.uuid4()),
        "hook": call["hook"],
        "fhirServer": fhir_server,
        "context": {"userId": USER, "patientId": case.id, **call["context"]},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def prefetch_of(case: Case, templates: Mapping[str, str]) -> dict[str, Any]:
    """Each prefetch template answered from the case's own record, as its FHIR server would: a read by id,
    or every resource of the searched type (the record is one patient's, and the service applies its own
    code and status hygiene to what it is given)."""
    prefetch: dict[str, Any] = {}
    for key, template in templates.items():
        path = template.partition("?")[0]
        kind, _, read = path.partition("/")
        if read:
            wanted = read.replace("{{context.patientId}}", case.id)
            found = [r for r in case.resources if r["resourceType"] == kind and r["id"] == wanted]
            prefetch[key] = found[0] if found else None
        else:
            entries = [{"resource": r} for r in case.resources if r["resourceType"] == kind]
            prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries)}
            if entries:
                prefetch[key]["entry"] = entries
    return prefetch


def id_list(card: dict[str, Any]) -> str:
    """The unmet criteria of a card's machine-readable checklist (V2-27), in order, each with its unmet
    parts: `R1,R2(C1,C7),R4`. Summaries are plain words, so this is what acceptance compares."""
    return ",".join(f"{code}({','.join(parts)})" if parts else code for code, parts in unmet_of_card(card))


def describe(cards: list[dict[str, Any]]) -> list[str]:
    """Cards as `RULE-ID` or `RULE-ID[unmet list]`, sorted: the form expectations are compared in."""
    found = []
    for card in cards:
        rule = card["source"]["topic"]["code"]
        found.append(f"{rule}[{id_list(card)}]" if "-NOT-MET" in rule or "INCOMPLETE" in rule else rule)
    return sorted(found)


def expected_of(call: dict[str, Any]) -> list[str]:
    return sorted(f"{c['ruleId']}[{c['unmet']}]" if "unmet" in c else c["ruleId"] for c in call["expected"])


def matches(cards: list[dict[str, Any]], call: dict[str, Any]) -> bool:
    """Same multiset of (rule id, indicator) and the same ID lists as expected."""
    actual = Counter((c["source"]["topic"]["code"], c["indicator"]) for c in cards)
    wanted = Counter((c["ruleId"], c["indicator"]) for c in call["expected"])
    return actual == wanted and describe(cards) == expected_of(call)
