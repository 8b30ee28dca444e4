"""Service calls: each hook's happy path and the shape the CDS Hooks spec requires of a response."""

from typing import Any

from cds_service.cli.cases import id_list
from cds_service.plans.canonical import RULE_CODES

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


PATIENT_VIEW = [("PATH-CC-INCOMPLETE", "warning"), ("RISK-DEP", "info"), ("RISK-SMOKE", "info")]


def test_patient_view_happy_path(client):
    response = post(client, "patient-view", hook_request("patient-view"))
    assert response.status_code == 200
    assert_valid_cards(response.json())
    assert rule_ids(response) == PATIENT_VIEW
    path = next(c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "PATH-CC-INCOMPLETE")
    assert id_list(path) == "C2,C6s,C6d,C6p"
    assert path["summary"].startswith("Conservative care incomplete: no CBT alongside PT; ")
    assert [s["label"] for s in path["suggestions"]] == ["Refer for cognitive behavioural therapy"]
    assert "- ✗ CBT alongside PT: not met" in path["detail"] and "- ✓ Formal PT" in path["detail"]


def test_order_select_evaluates_only_the_selected_draft(client):
    body = hook_request("order-select")
    response = post(client, "order-select", body)
    assert response.status_code == 200
    assert_valid_cards(response.json())
    # the opioid draft is not selected, so no opioid + gabapentinoid card yet
    assert rule_ids(response) == [("HW-MET", "info")]
    opioid = next(
        e["resource"]
        for e in body["context"]["draftOrders"]["entry"]
        if e["resource"]["resourceType"] == "MedicationRequest"
    )
    body["context"]["selections"].append(f"MedicationRequest/{opioid['id']}")
    assert rule_ids(post(client, "order-select", body)) == [
        ("HW-MET", "info"),
        ("MED-SEDATING", "warning"),
    ]


def test_order_sign_evaluates_all_drafts(client):
    response = post(client, "order-sign", hook_request("order-sign"))
    assert response.status_code == 200
    body = response.json()
    assert_valid_cards(body)
    assert rule_ids(response) == [("REV-NOT-MET", "warning")]  # the odds are in its detail (V2-22)
    revision = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "REV-NOT-MET")
    assert id_list(revision) == "R2(C1,C2,C5,C7),R3,R4,R5"
    assert revision["summary"].startswith("Revision not supported yet: conservative care incomplete; ")
    actions = [s["actions"][0] for s in revision["suggestions"]]
    assert [a["type"] for a in actions] == ["create", "create", "delete"]
    # R4 unmet: a diagnostic block, never imaging; R5 unmet a year after the fusion: a thin-cut CT (V2-28)
    assert [a["resource"]["code"]["coding"][0]["code"] for a in actions[:2]] == ["64493", "72131"]
    assert actions[2]["resourceId"] == "ServiceRequest/p03-cc-incomplete-radicular-draft-1"
    assert [r["code"] for r in revision["overrideReasons"]] == [
        "criteria-met-elsewhere",
        "urgent-indication",
        "shared-decision",
        "patient-declined-alternative",
        "not-applicable",
    ]
    assert "? Significant functional impairment" in revision["detail"]
    assert "not documented (not recorded: Recent Oswestry disability score" in revision["detail"]


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
    assert rule_ids(response) == PATIENT_VIEW


def test_a_patient_without_findings_gets_an_empty_card_list(client):
    body = hook_request("patient-view")
    body["prefetch"] = dict.fromkeys(body["prefetch"])
    response = post(client, "patient-view", body)
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_entered_in_error_records_are_not_evidence(client):
    body = hook_request("patient-view")
    for entry in body["prefetch"]["conditions"]["entry"]:
        if entry["resource"]["code"]["coding"][0]["code"] == "G89.4":
            entry["resource"]["verificationStatus"]["coding"][0]["code"] = "entered-in-error"
            del entry["resource"]["clinicalStatus"]
    cards = post(client, "patient-view", body).json()["cards"]
    path = next(c for c in cards if c["source"]["topic"]["code"] == "PATH-CC-INCOMPLETE")
    assert id_list(path) == "C2,C6s,C6d"  # no chronic pain syndrome, so no C6p


def test_a_failing_plan_definition_does_not_take_down_the_others(client, monkeypatch):
    ruleset = client.app_state["cds"].rules.ruleset

    def broken(data):
        raise RuntimeError("simulated defect in a fact")

    fact = ruleset.facts["vitaminDNgMl"]  # read only by the risk-factors plan definition
    monkeypatch.setitem(ruleset.facts, fact.name, type(fact)(fact.name, fact.description, broken))
    response = post(client, "patient-view", hook_request("patient-view"))
    assert response.status_code == 200
    assert rule_ids(response) == [("PATH-CC-INCOMPLETE", "warning")]


def test_card_source_links_to_a_readable_page_of_its_rules(client):
    cards = post(client, "order-sign", hook_request("order-sign")).json()["cards"]
    url = cards[0]["source"]["url"]
    assert url == "http://testserver/rules/revision"
    page = client.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<strong>R4</strong> Pain source localised" in page.text
    assert "<strong>R1</strong> At least 6 months since the index fusion" in page.text  # thresholds filled in
    assert "{{" not in page.text
    assert client.get("/rules/no-such-plan").status_code == 404


def test_source_links_use_the_public_base_url_behind_a_proxy(client_factory):
    client = client_factory(public_base_url="https://cds.example.org/api")
    cards = post(client, "order-sign", hook_request("order-sign")).json()["cards"]
    assert {card["source"]["url"] for card in cards} == {"https://cds.example.org/api/rules/revision"}


def test_every_call_leaves_one_audit_line_without_patient_data(client, caplog):
    import logging

    body = hook_request("order-sign")
    with caplog.at_level(logging.INFO, logger="cds_service.audit"):
        post(client, "order-sign", body)
        post(client, "order-sign", {**body, "hook": "patient-view"})
    lines = [r.getMessage() for r in caplog.records if r.name == "cds_service.audit"]
    assert len(lines) == 2
    instance = body["hookInstance"]
    service = "service=postfusion-pain-order-sign hook=order-sign"
    expected = f"call {service} hookInstance={instance} iss=UNVERIFIED status=200 "
    assert lines[0].startswith(expected)
    assert "cards=REV-NOT-MET " in lines[0] and f"resources={sum(1 for _ in resources(body))}" in lines[0]
    assert " status=400 " in lines[1] and "hook=patient-view" in lines[1]
    assert body["context"]["patientId"] not in caplog.text


def resources(body: dict):
    for value in body["prefetch"].values():
        yield from (value or {}).get("entry", [])


def test_a_dstu2_draft_order_is_refused_naming_the_version(client):
    """An EHR speaking an older FHIR must hear so, not get an empty answer as if its orders were reviewed."""
    body = hook_request("order-sign")
    entry = body["context"]["draftOrders"]["entry"][0]
    entry["resource"] = {**entry["resource"], "resourceType": "MedicationOrder"}
    response = post(client, "order-sign", body)
    assert response.status_code == 400
    (issue,) = response.json()["issue"]
    assert "FHIR DSTU2" in issue["diagnostics"] and "MedicationRequest" in issue["diagnostics"]
    assert issue["expression"] == ["context.draftOrders.entry[0].resource.resourceType"]
