"""The integrator's contract says what the rules read: docs/integration.md is generated from the rules, and
every record a card rests on, in every fixture call, is one the contract lists for that hook."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.config import bundled
from cds_service.plans import canonical
from cds_service.plans.contract import build_contract
from cds_service.plans.contract_text import markdown
from cds_service.plans.loader import load_ruleset
from cds_service.plans.model import RuleSet
from cds_service.record import make_entry

from support.every_call import app_at_t0, every_call
from support.hooks import ROOT


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_ruleset(bundled("plandefinitions"))


def test_the_integration_page_is_the_contract_of_the_bundled_rules(ruleset):
    written = (ROOT / "docs" / "integration.md").read_text()
    assert written == markdown(build_contract(ruleset)), (
        "docs/integration.md is out of date: run `cds-service rules data > docs/integration.md`"
    )


def test_every_observation_says_what_value_to_send(ruleset):
    contract = build_contract(ruleset)
    observations = [
        row for hook in contract.hooks for row in hook.records if row.resource_type == "Observation"
    ]
    assert len({row.valueset for row in observations}) >= 20
    for row in observations:
        assert row.value, row
    by_name = {row.valueset: row.value for row in observations}
    assert by_name["BodyMassIndex"] == "a quantity (valueQuantity) in kg/m2"
    assert by_name["VitaminD25OH"] == "a quantity (valueQuantity) in ng/mL or nmol/L"
    assert by_name["RfNeckStiffness"] == "true or false (valueBoolean)"
    assert by_name["SmokingStatus"].startswith("a code (valueCodeableConcept) in ")
    assert "component coded" in by_name["DiagnosticBlockRelief"]


def test_the_local_codes_of_observations_say_their_value_type(ruleset):
    contract = build_contract(ruleset)
    assert contract.local_system == canonical.LOCAL_CODES
    observed = {
        code
        for hook in contract.hooks
        for row in hook.records
        if row.resource_type == "Observation"
        for system, code in ruleset.valuesets[row.valueset].include.codes
        if system == canonical.LOCAL_CODES
    }
    assert len(observed) >= 15
    values = {code.code: code.value for code in contract.local_codes}
    assert all(values[code] for code in observed), {code: values[code] for code in observed}


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict[str, Any]]]:
    """(hook, resource) for every record a card's checklist cites as evidence, over every fixture call."""
    found = []
    with app_at_t0(tmp_path_factory.mktemp("contract")) as client:
        for case, call, cards in every_call(client):
            resources = {
                f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
                for e in case["bundle"]["entry"]
            }
            for card in cards:
                for state in (card.get("extension") or {}).get(canonical.CRITERIA_EXTENSION, []):
                    found += [
                        (call["hook"], resources[ref])
                        for ref in state.get("evidence", [])
                        if ref in resources
                    ]
    return found


def test_every_record_a_card_rests_on_is_in_the_contract_of_its_hook(ruleset, evidence):
    contract = build_contract(ruleset)
    listed = {
        (hook.hook, row.resource_type, name)
        for hook in contract.hooks
        for row in hook.records
        for name in (row.tested if not row.valueset else (row.valueset,))
    }
    assert len(evidence) > 100
    for hook, resource in evidence:
        entry = make_entry(resource)
        names = {name for name, valueset in ruleset.valuesets.items() if valueset.matches(entry)}
        assert any((hook, resource["resourceType"], name) in listed for name in names), (
            hook,
            resource["id"],
            names,
        )


def test_draft_orders_are_listed_only_where_the_hook_sends_them(ruleset):
    hooks = {hook.hook: hook for hook in build_contract(ruleset).hooks}
    assert hooks["patient-view"].drafts == ()
    revision = [row for row in hooks["order-select"].drafts if row.valueset == "RevisionOrders"]
    assert revision and {"REV-MET", "REV-NOT-MET"} <= set(revision[0].cards)


def test_the_served_page_shows_the_contract_of_the_rules_in_service(client):
    response = client.get("/rules/data")
    assert response.status_code == 200
    page = response.text
    for hook in ("patient-view", "order-select", "order-sign"):
        assert f'<section id="{hook}">' in page
    assert "Body mass index" in page or "BMI" in page
    assert "kg/m2" in page and "imaging-symptom-correlation" in page
