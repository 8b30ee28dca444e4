"""Service calls: each hook's happy path and the shape the CDS Hooks spec requires of a response."""

from typing import Any

from cds_service.plans.urls import RULE_CODES

from support.hooks import SERVICES, hook_request, rule_ids


def post(client, hook: str, body: Any):
    return client.post(f"/cds-services/{SERVICES[hook]}", json=body)


def assert_no_empty_members(value: Any, where: str = "$") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert item is not None and item != [] and item != {}, f"{where}.{key} is empty"
            assert_no_empty_members(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_no_empty_members(item, f"{where}[{index}]")


def assert_valid_cards(body: dict) -> None:
    assert set(body) <= {"cards", "systemActions"}
    for card in body["cards"]:
        assert_no_empty_members(card)
        assert card["uuid"] and len(card["summary"]) < 140
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"] and card["source"]["topic"]["system"] == RULE_CODES
        if "suggestions" in card:
            assert card["selectionBehavior"] in {"at-most-one", "any"}
            for suggestion in card["suggestions"]:
                assert suggestion["uuid"] and suggestion["label"]
                for action in suggestion["actions"]:
                    assert action["description"]
                    assert ("resourceId" in action) == (action["type"] == "delete")
        for reason in card.get("overrideReasons", []):
            assert reason["display"]


def test_patient_view_happy_path(client):
    response = post(client, "patient-view", hook_request("patient-view"))
    assert response.status_code == 200
    assert_valid_cards(response.json())
    assert rule_ids(response) == [("MED-OPIOID-GABA", "warning"), ("RF-1", "critical")]


def test_order_select_evaluates_only_the_selected_draft(client):
    body = hook_request("order-select")
    response = post(client, "order-select", body)
    assert response.status_code == 200
    assert_valid_cards(response.json())
    # the oxycodone draft is not selected, so no opioid + gabapentinoid card yet
    assert rule_ids(response) == [("HW-MET", "info")]
    body["context"]["selections"].append("MedicationRequest/draft-oxy")
    assert rule_ids(post(client, "order-select", body)) == [
        ("HW-MET", "info"),
        ("MED-OPIOID-GABA", "warning"),
    ]


def test_order_sign_evaluates_all_drafts(client):
    response = post(client, "order-sign", hook_request("order-sign"))
    assert response.status_code == 200
    body = response.json()
    assert_valid_cards(body)
    assert rule_ids(response) == [("HW-NOT-SUPPORTED", "warning"), ("MED-OPIOID-GABA", "warning")]
    hardware = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "HW-NOT-SUPPORTED")
    remove = hardware["suggestions"][0]["actions"][0]
    assert remove == {
        "type": "delete",
        "description": "Remove the draft order: Removal of posterior nonsegmental instrumentation",
        "resourceId": "ServiceRequest/draft-hw-removal",
    }
    assert "**H1**" in hardware["detail"] and "not documented" in hardware["detail"]


def test_every_card_and_suggestion_gets_a_fresh_uuid(client):
    first = post(client, "order-sign", hook_request("order-sign")).json()
    second = post(client, "order-sign", hook_request("order-sign")).json()
    uuids = [c["uuid"] for c in first["cards"] + second["cards"]]
    uuids += [s["uuid"] for c in first["cards"] + second["cards"] for s in c.get("suggestions", [])]
    assert len(uuids) == len(set(uuids))


def test_unknown_members_are_ignored(client):
    body = hook_request("patient-view")
    body["extension"] = {"com.example.timestamp": "2026-11-01T12:00:00Z"}
    body["someFutureField"] = {"nested": [1, 2]}
    body["context"]["someFutureContext"] = "x"
    response = post(client, "patient-view", body)
    assert response.status_code == 200
    assert rule_ids(response) == [("MED-OPIOID-GABA", "warning"), ("RF-1", "critical")]


def test_a_patient_without_findings_gets_an_empty_card_list(client):
    body = hook_request("patient-view")
    body["prefetch"] = {"conditions": None, "medicationRequests": None, "medicationStatements": None}
    response = post(client, "patient-view", body)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_entered_in_error_records_are_not_evidence(client):
    body = hook_request("patient-view")
    for entry in body["prefetch"]["conditions"]["entry"]:
        if entry["resource"]["code"]["coding"][0]["code"] == "G83.4":
            entry["resource"]["verificationStatus"]["coding"][0]["code"] = "entered-in-error"
            del entry["resource"]["clinicalStatus"]
    assert rule_ids(post(client, "patient-view", body)) == [("MED-OPIOID-GABA", "warning")]


def test_a_failing_plan_definition_does_not_take_down_the_others(client, monkeypatch):
    ruleset = client.app.state.rules.ruleset

    def broken(data):
        raise RuntimeError("simulated defect in a fact")

    monkeypatch.setitem(
        ruleset.facts, "caudaEquina", type(ruleset.facts["caudaEquina"])("caudaEquina", "", broken)
    )
    response = post(client, "patient-view", hook_request("patient-view"))
    assert response.status_code == 200
    assert rule_ids(response) == [("MED-OPIOID-GABA", "warning")]
