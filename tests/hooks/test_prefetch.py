"""Prefetch given, null, missing, partial, paginated or an OperationOutcome; fallback fetches with the
bearer token forwarded; 412 only when the data cannot be had. The FHIR server is a real loopback server."""

import logging
import time

import pytest

from cds_service.cli.cases import id_list
from cds_service.record import resources_of

from support.examples import example_call
from support.hooks import SERVICES, TOKEN, hook_request, rule_ids, serve_prefetch_from, with_server

# The cards fixtures/hooks/order-sign.json must get: those its synthetic case expects of that call.
EXPECTED = example_call("order-sign")["expected"]


def assert_expected_cards(response) -> None:
    """The case's expected cards: each (rule id, indicator), and each card's list of unmet criteria."""
    assert response.status_code == 200, response.text
    assert rule_ids(response) == sorted((card["ruleId"], card["indicator"]) for card in EXPECTED)
    cards = {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}
    for card in EXPECTED:
        if "unmet" in card:
            assert id_list(cards[card["ruleId"]]) == card["unmet"], cards[card["ruleId"]]["summary"]


@pytest.fixture
def order_sign(fhir, client_factory):
    base, state = fhir
    client = client_factory(fhir_allowed_servers=[base])
    reference = client.post(f"/cds-services/{SERVICES['order-sign']}", json=hook_request("order-sign"))
    assert_expected_cards(reference)  # the reference: complete prefetch, no fhirAuthorization
    return client, base, state, rule_ids(reference)


def call(client, body):
    return client.post(f"/cds-services/{SERVICES['order-sign']}", json=body)


def test_complete_prefetch_needs_no_fetch(order_sign):
    client, base, state, expected = order_sign
    response = call(client, with_server(hook_request("order-sign"), base))
    assert_expected_cards(response)
    assert rule_ids(response) == expected
    assert state.data_requests == []


def test_missing_prefetch_is_fetched_with_the_bearer_token(order_sign):
    client, base, state, expected = order_sign
    body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, body)
    del body["prefetch"]
    response = call(client, body)
    assert response.status_code == 200
    assert rule_ids(response) == expected
    assert sorted(r.path for r in state.data_requests) == [
        "/fhir/AllergyIntolerance",
        "/fhir/Condition",
        "/fhir/DiagnosticReport",
        "/fhir/Encounter",
        "/fhir/MedicationRequest",
        "/fhir/MedicationStatement",
        "/fhir/Observation",
        "/fhir/Procedure",
        "/fhir/ServiceRequest",
    ]
    assert {r.authorization for r in state.data_requests} == {f"Bearer {TOKEN}"}
    assert all("patient=p03-cc-incomplete-radicular" in r.query for r in state.data_requests)


def test_open_fhir_server_is_called_without_authorization(order_sign):
    client, base, state, expected = order_sign
    body = with_server(hook_request("order-sign"), base, token=None)
    serve_prefetch_from(state, body)
    del body["prefetch"]
    assert rule_ids(call(client, body)) == expected
    assert {r.authorization for r in state.data_requests} == {None}


def test_partial_prefetch_fetches_only_the_missing_keys(order_sign):
    client, base, state, expected = order_sign
    body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, body)
    del body["prefetch"]["medicationRequests"]
    del body["prefetch"]["conditions"]
    assert rule_ids(call(client, body)) == expected
    assert sorted(r.path for r in state.data_requests) == ["/fhir/Condition", "/fhir/MedicationRequest"]


def test_null_prefetch_means_no_data_and_is_not_fetched(order_sign):
    client, base, state, _ = order_sign
    body = with_server(hook_request("order-sign"), base)
    body["prefetch"]["medicationRequests"] = None
    cards = call(client, body).json()["cards"]
    # without the naproxen and gabapentin prescriptions, C3 and C4 become unmet too
    assert id_list(cards[0]) == "R2(C1,C2,C3,C4,C5,C7),R3,R4,R5"
    assert state.data_requests == []


def test_operation_outcome_in_prefetch_is_fetched_instead(order_sign):
    client, base, state, expected = order_sign
    body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, body)
    body["prefetch"]["medicationRequests"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "EHR prefetch timed out"}],
    }
    assert rule_ids(call(client, body)) == expected
    assert [r.path for r in state.data_requests] == ["/fhir/MedicationRequest"]


def test_unusable_prefetch_value_is_fetched_instead(order_sign):
    client, base, state, expected = order_sign
    body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, body)
    body["prefetch"]["medicationRequests"] = "123"
    assert rule_ids(call(client, body)) == expected
    assert [r.path for r in state.data_requests] == ["/fhir/MedicationRequest"]


def test_fallback_follows_paging(order_sign, client_factory):
    _, base, state, expected = order_sign
    client = client_factory(fhir_allowed_servers=[base], fhir_page_size=0)  # pages of the server's size
    body = with_server(hook_request("order-sign"), base)
    pid = body["context"]["patientId"]
    serve_prefetch_from(state, body)
    state.load(
        [
            {
                "resourceType": "Condition",
                "id": f"filler-{i}",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]},
            }
            for i in range(5)
        ]
    )
    state.page_size = 2
    del body["prefetch"]
    assert rule_ids(call(client, body)) == expected
    conditions = sum(
        len(resources_of(v)) for k, v in hook_request("order-sign")["prefetch"].items() if k == "conditions"
    )
    condition_pages = [r for r in state.data_requests if r.path == "/fhir/Condition"]
    assert len(condition_pages) == -(-(conditions + 5) // 2)  # 2 per page
    assert {r.authorization for r in condition_pages} == {f"Bearer {TOKEN}"}


def test_paginated_prefetch_bundle_is_completed(order_sign):
    client, base, state, _ = order_sign
    body = with_server(hook_request("order-sign"), base)
    pid = body["context"]["patientId"]
    failure = {
        "resourceType": "Condition",
        "id": "hw-failure",
        "subject": {"reference": f"Patient/{pid}"},
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "T84.226A"}]},
    }
    state.load([failure])  # the server holds the next page: what the prefetched first page left out
    body["prefetch"]["conditions"]["link"] = [
        {"relation": "next", "url": f"{base}/Condition?patient={pid}&_count=10&_offset=0"}
    ]
    response = call(client, body)
    # the second page holds a confirmed hardware failure, a structural pathology: R5 is now met
    assert id_list(response.json()["cards"][0]) == "R2(C1,C2,C5,C7),R3,R4"
    assert [r.path for r in state.data_requests] == ["/fhir/Condition"]


def test_missing_prefetch_without_fhir_server_is_412(order_sign):
    client, *_ = order_sign
    body = hook_request("order-sign")
    del body["fhirServer"]
    del body["prefetch"]["observations"]
    response = call(client, body)
    assert response.status_code == 412
    issues = response.json()["issue"]
    assert [i["expression"] for i in issues] == [["prefetch.observations"]]
    assert "no fhirServer" in issues[0]["diagnostics"]


def test_failing_fhir_server_is_412_naming_the_key(order_sign):
    client, base, state, _ = order_sign
    state.fail_status = {"Observation": 500}
    body = with_server(hook_request("order-sign"), base)
    del body["prefetch"]["observations"]
    response = call(client, body)
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.observations"] and "500" in issue["diagnostics"]
    assert TOKEN not in response.text


def test_slow_fhir_server_is_412_quickly(order_sign):
    client, base, state, _ = order_sign
    state.delay_s = 5
    body = with_server(hook_request("order-sign"), base)
    del body["prefetch"]
    started = time.monotonic()
    response = call(client, body)
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert elapsed < 3, elapsed  # fhir_timeout_s is 1 s in tests; keys are fetched concurrently
    assert len(response.json()["issue"]) == 9  # one per prefetch key


def test_fhir_server_not_allowlisted_is_412_without_a_connection(fhir, client_factory):
    base, state = fhir
    client = client_factory(fhir_allowed_servers=["https://ehr.example.org/fhir"])
    body = with_server(hook_request("order-sign"), base)
    del body["prefetch"]["conditions"]
    response = call(client, body)
    assert response.status_code == 412
    assert "not allowlisted" in response.json()["issue"][0]["diagnostics"]
    assert state.data_requests == []


def test_fallback_asks_for_the_configured_page_size(fhir, client_factory):
    base, state = fhir
    client = client_factory(fhir_allowed_servers=[base], fhir_page_size=1)
    body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, body)
    expected = rule_ids(call(client, body))
    del body["prefetch"]["conditions"]
    assert rule_ids(call(client, body)) == expected
    pages = [r for r in state.data_requests if r.path == "/fhir/Condition"]
    assert len(pages) == len(state.resources["Condition"]) and all("_count=1" in r.query for r in pages)


def test_logs_name_no_patient_and_no_token(order_sign, caplog):
    client, base, state, _ = order_sign
    body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, body)
    del body["prefetch"]
    with caplog.at_level(logging.DEBUG):
        assert call(client, body).status_code == 200
    assert caplog.records
    assert "p03-cc-incomplete-radicular" not in caplog.text and TOKEN not in caplog.text


def test_malformed_data_from_the_fhir_server_is_412(order_sign):
    client, base, state, _ = order_sign
    body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, body)
    state.resources["Condition"][0]["code"] = "M96.1"  # a string where a CodeableConcept belongs
    del body["prefetch"]["conditions"]
    response = call(client, body)
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.conditions"] and "malformed data" in issue["diagnostics"]
