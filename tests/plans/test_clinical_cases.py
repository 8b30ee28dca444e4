"""Synthetic clinical cases (fixtures/patients): valid FHIR R4, coverage of RULES.md, and the service's cards.

The expected cards were written from the clinical specification (RULES.md), independently of the plan
definitions, so a mismatch is either a defect in the rules or a question for the specification.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service import cli
from cds_service.cli.cases import id_list

from support.hooks import ROOT, SERVICES
from support.requests import discovery_templates, hook_request
from support.synthetic import INDICATORS, T0_TEXT, WITH_UNMET, write

CASES_DIR = ROOT / "fixtures" / "patients"
CASES: list[dict[str, Any]] = [orjson.loads(p.read_bytes()) for p in sorted(CASES_DIR.glob("*.json"))]
CALLS = [(case, call) for case in CASES for call in case["calls"]]
CALL_IDS = [f"{case['id']}/{call['name']}" for case, call in CALLS]

# Every rule id a call can expect at the default configuration (RULES.md section 4 as changed by section 8):
# REV-ODDS, REV-REDFLAG and HW-REDFLAG are gone and PATH-EARLY is off by default (V2-22); MED-OPIOID-GABA is
# MED-SEDATING (V2-19).
RULE_IDS = [
    *(f"RF-{n}" for n in range(1, 8)),
    "LAB-CRP",
    "PATH-NODATE",
    "PATH-CC-INCOMPLETE",
    "PATH-CC-COMPLETE",
    "HW-EARLY",
    "RISK-SMOKE",
    "RISK-DEP",
    "RISK-WEIGHT",
    "VITD-LOW",
    "MED-SEDATING",
    "REV-MET",
    "REV-NOT-MET",
    "HW-MET",
    "HW-FAIL-ONLY",
    "HW-BLOCK-ONLY",
    "HW-NOT-SUPPORTED",
    "HW-NONUNION",
    "HW-INFECTION",
    "SCS-MET",
    "SCS-NOT-MET",
    "SCS-PERM-MET",
    "SCS-PERM-NOT-MET",
]
# Rules of an order-hook pathway (REV, HW, SCS) that patient-view shows (V2-6).
PATIENT_VIEW_PATHWAY_RULES = {"HW-EARLY"}
# The fixed order of each ID list (RULES.md sections 2.2, 2.3, 2.5, 4 and V2-21).
C_ORDER = ["C1", "C2", "C3", "C4", "C5", "C6s", "C6d", "C6p", "C7"]
ORDERS = {
    "PATH-CC-INCOMPLETE": (C_ORDER, {}),
    "REV-NOT-MET": (["R1", "R2", "R3", "R4", "R5"], {"R2": C_ORDER}),
    "SCS-NOT-MET": (["S1", "S2", "X1", "X2", "X3", "X4", "X5", "X6"], {"S1": [*C_ORDER[:-1], "INT"]}),
    # P1: a completed 63650 trial within 90 d; P2: trial relief >= scs.trialReliefPct (V2-21)
    "SCS-PERM-NOT-MET": (["P1", "P2"], {}),
}
# Criteria whose unmet state is the card itself rather than an ID list.
UNMET_BY_CARD = {
    "H1": {"HW-BLOCK-ONLY", "HW-NOT-SUPPORTED"},
    "H2": {"HW-FAIL-ONLY", "HW-NOT-SUPPORTED"},
    "H3": {"HW-NONUNION"},  # V2-4: H1 holds, a pseudarthrosis is documented
}
ALL_CRITERIA = [*C_ORDER, "R1", "R2", "R3", "R4", "R5", "H1", "H2", "H3", "S1", "INT", "S2", "P1", "P2"]
ALL_CRITERIA += [f"X{n}" for n in range(1, 7)]


def validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def expected_cards() -> list[dict[str, Any]]:
    return [card for _, call in CALLS for card in call["expected"]]


def split_top_level(ids: str) -> list[str]:
    """Split an ID list at the commas that are not inside parentheses."""
    return re.findall(r"[A-Za-z0-9]+(?:\([^)]*\))?", ids)


def parse_id_list(rule: str, ids: str) -> list[tuple[str, list[str]]]:
    """Check an ID list against the fixed order and format of RULES.md; return (id, sub-ids) pairs."""
    order, nested = ORDERS[rule]
    items = []
    for part in split_top_level(ids):
        match = re.fullmatch(r"([A-Za-z0-9]+)(?:\(([^)]*)\))?", part)
        assert match, f"{rule}: bad item {part!r} in {ids!r}"
        name, inner = match.group(1), match.group(2)
        subs = inner.split(",") if inner else []
        assert (name in nested) == bool(subs), f"{rule}: {name} must{'' if name in nested else ' not'} nest"
        if subs:
            positions = [nested[name].index(sub) for sub in subs]
            assert positions == sorted(set(positions)), f"{rule}: {name}({inner}) out of order"
        items.append((name, subs))
    positions = [order.index(name) for name, _ in items]
    assert positions == sorted(set(positions)), f"{rule}: {ids!r} out of order"
    assert ",".join(p for p in split_top_level(ids)) == ids, f"{rule}: {ids!r} has spaces or stray text"
    return items


# --- the data ------------------------------------------------------------------------------------------


def test_fixtures_are_regenerated_identically(tmp_path: Path):
    written = {path.name: path.read_bytes() for path in write(tmp_path)}
    assert written == {path.name: path.read_bytes() for path in sorted(CASES_DIR.glob("*.json"))}


def test_there_are_at_least_30_cases_with_unique_resource_ids():
    assert len(CASES) >= 30
    entries = [entry for case in CASES for entry in case["bundle"]["entry"]]
    ids = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries]
    assert len(ids) == len(set(ids))
    assert len({e["fullUrl"] for e in entries}) == len(entries)
    drafts = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}": case["id"]
        for case, call in CALLS
        for e in call["context"].get("draftOrders", {}).get("entry", [])
    }
    assert all(key.split("/")[1].startswith(case_id + "-draft-") for key, case_id in drafts.items())


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_is_valid_fhir_r4(case: dict[str, Any]):
    assert case["t0"] == T0_TEXT and case["description"] and case["calls"]
    bundle = case["bundle"]
    validate(bundle)
    resources = [entry["resource"] for entry in bundle["entry"]]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    assert [p["id"] for p in patients] == [case["id"]]
    record = set()
    for resource in resources:
        validate(resource)
        record.add(f"{resource['resourceType']}/{resource['id']}")
        if resource["resourceType"] == "Patient":
            continue
        assert resource["id"].startswith(case["id"] + "-")
        reference = resource.get("subject") or resource.get("patient")
        assert reference == {"reference": f"Patient/{case['id']}"}, resource["id"]
        if resource["resourceType"] == "Condition" and "clinicalStatus" not in resource:
            assert resource["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    names = [call["name"] for call in case["calls"]]
    assert len(names) == len(set(names))
    for call in case["calls"]:
        assert call["hook"] in SERVICES
        assert set(call["context"]) <= {"draftOrders", "selections"}
        drafts = call["context"].get("draftOrders")
        if call["hook"] == "patient-view":
            assert not call["context"]
            continue
        validate(drafts)
        keys = set()
        for entry in drafts["entry"]:
            draft = entry["resource"]
            validate(draft)
            key = f"{draft['resourceType']}/{draft['id']}"
            keys.add(key)
            assert key not in record, f"draft {key} must not be in the record"
            assert draft["status"] == "draft" and draft["subject"] == {"reference": f"Patient/{case['id']}"}
            assert draft["resourceType"] in {"ServiceRequest", "MedicationRequest"}
        if call["hook"] == "order-select":
            assert call["context"]["selections"] and set(call["context"]["selections"]) <= keys
        else:
            assert "selections" not in call["context"]


@pytest.mark.parametrize(("case", "call"), CALLS, ids=CALL_IDS)
def test_expected_cards_are_well_formed(case: dict[str, Any], call: dict[str, Any]):
    for card in call["expected"]:
        assert card["ruleId"] in RULE_IDS and card["indicator"] == INDICATORS[card["ruleId"]]
        assert ("unmet" in card) == (card["ruleId"] in WITH_UNMET), card
        if "unmet" in card:
            assert parse_id_list(card["ruleId"], card["unmet"])
    rules = [card["ruleId"] for card in call["expected"]]
    if call["hook"] == "patient-view":
        assert sum(rule.startswith("PATH-") for rule in rules) <= 1
        assert not any(
            rule.split("-")[0] in {"REV", "HW", "SCS"} and rule not in PATIENT_VIEW_PATHWAY_RULES
            for rule in rules
        )
        if any(rule.startswith("RF-") or rule == "HW-EARLY" for rule in rules):  # V2-6: HW-EARLY, no PATH
            assert not any(rule.startswith("PATH-") for rule in rules)
    else:
        assert not any(rule.split("-")[0] in {"PATH", "RISK", "VITD"} for rule in rules)


def test_every_rule_id_fires_in_some_call():
    fired = {card["ruleId"] for card in expected_cards()}
    assert set(RULE_IDS) - fired == set()


def test_every_criterion_is_shown_unmet_in_some_call():
    shown: set[str] = set()
    inside_s1: set[str] = set()
    for card in expected_cards():
        if "unmet" in card:
            for name, subs in parse_id_list(card["ruleId"], card["unmet"]):
                shown.add(name)
                shown.update(subs)
                if name == "S1":
                    inside_s1.update(subs)
        for criterion, rules in UNMET_BY_CARD.items():
            if card["ruleId"] in rules:
                shown.add(criterion)
    assert set(ALL_CRITERIA) - shown == set()
    assert set(C_ORDER[:-1]) | {"INT"} <= inside_s1, "S1 should show each of its C-ids and INT"


def test_out_of_scope_patients_and_non_trigger_drafts_expect_no_cards():
    empty = {(call["hook"]) for _, call in CALLS if not call["expected"]}
    assert {"patient-view", "order-sign", "order-select"} <= empty


# --- the service -----------------------------------------------------------------------------------------


def assert_cards(body: dict[str, Any], call: dict[str, Any]) -> None:
    cards = body["cards"]
    actual = Counter((card["source"]["topic"]["code"], card["indicator"]) for card in cards)
    expected = Counter((card["ruleId"], card["indicator"]) for card in call["expected"])
    summaries = [f"{card['source']['topic']['code']}: {card['summary']}" for card in cards]
    assert actual == expected, f"cards differ:\n  expected {sorted(expected.elements())}\n  got {summaries}"
    for wanted in call["expected"]:
        if "unmet" not in wanted:
            continue
        candidates = [id_list(c) for c in cards if c["source"]["topic"]["code"] == wanted["ruleId"]]
        assert wanted["unmet"] in candidates, (
            f"{wanted['ruleId']}: expected unmet {wanted['unmet']!r}, got {candidates}"
        )


@pytest.mark.parametrize(("case", "call"), CALLS, ids=CALL_IDS)
def test_service_returns_the_expected_cards(client, case: dict[str, Any], call: dict[str, Any]):
    body = hook_request(case, call, discovery_templates(client)[call["hook"]])
    response = client.post(f"/cds-services/{SERVICES[call['hook']]}", json=body)
    assert response.status_code == 200, response.text
    assert_cards(response.json(), call)


CLI_CASES = {
    "p03-cc-incomplete-radicular",
    "p18-rf1-cauda-equina-opioid",
    "p20-rf3-fever-degf-scs",
    "p25-hw-met-select-vs-sign",
    "p37-expired-opioid-draft-opioid",
}
CLI_CALLS = [(case, call) for case, call in CALLS if case["id"] in CLI_CASES]


@pytest.mark.parametrize(
    ("case", "call"), CLI_CALLS, ids=[f"{case['id']}/{call['name']}" for case, call in CLI_CALLS]
)
def test_cli_evaluate_returns_the_expected_cards(
    client, tmp_path: Path, capsys, case: dict[str, Any], call: dict[str, Any]
):
    body = hook_request(case, call, discovery_templates(client)[call["hook"]])
    path = tmp_path / "request.json"
    path.write_bytes(orjson.dumps(body))
    capsys.readouterr()
    status = cli.main(["evaluate", str(path), "--now", "2026-11-01T12:00:00+00:00"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert_cards(orjson.loads(out), call)
