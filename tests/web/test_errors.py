"""Bad input gets the right status and an OperationOutcome saying what is wrong and where."""

import pytest

from support.hooks import SERVICES, hook_request

URL = f"/cds-services/{SERVICES['order-select']}"


def outcome(response, status: int) -> list[dict]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(issue["severity"] in {"error", "fatal"} for issue in body["issue"])
    assert "Traceback" not in response.text
    return body["issue"]


def where(issues: list[dict]) -> set[str]:
    return {expression for issue in issues for expression in issue.get("expression", [])}


def mutate(change):
    body = hook_request("order-select")
    change(body)
    return body


INVALID_ENVELOPES = {
    "missing hook": (lambda b: b.pop("hook"), "hook"),
    "hook of another service": (lambda b: b.update(hook="order-sign"), "hook"),
    "unknown hook": (lambda b: b.update(hook="appointment-book"), "hook"),
    "missing hookInstance": (lambda b: b.pop("hookInstance"), "hookInstance"),
    "hookInstance not a uuid": (lambda b: b.update(hookInstance="1234"), "hookInstance"),
    "fhirServer not a URL": (lambda b: b.update(fhirServer="ftp://x"), "fhirServer"),
    "fhirAuthorization without fhirServer": (
        lambda b: (
            b.pop("fhirServer"),
            b.update(
                fhirAuthorization={
                    "access_token": "t",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "patient/*.read",
                    "subject": "cds",
                }
            ),
        ),
        "fhirAuthorization",
    ),
    "fhirAuthorization incomplete": (
        lambda b: b.update(fhirAuthorization={"access_token": "t", "token_type": "Bearer"}),
        "fhirAuthorization.expires_in",
    ),
    "token type not Bearer": (
        lambda b: b.update(
            fhirAuthorization={
                "access_token": "t",
                "token_type": "MAC",
                "expires_in": 300,
                "scope": "s",
                "subject": "cds",
            }
        ),
        "fhirAuthorization.token_type",
    ),
    "missing context": (lambda b: b.pop("context"), "context"),
    "missing patientId": (lambda b: b["context"].pop("patientId"), "context.patientId"),
    "patientId not a string": (lambda b: b["context"].update(patientId=12), "context.patientId"),
    "userId not a reference": (lambda b: b["context"].update(userId="dr-who"), "context.userId"),
    "missing selections": (lambda b: b["context"].pop("selections"), "context.selections"),
    "empty selections": (lambda b: b["context"].update(selections=[]), "context.selections"),
    "selection not in draftOrders": (
        lambda b: b["context"].update(selections=["ServiceRequest/elsewhere"]),
        "context.selections",
    ),
    "draftOrders not a Bundle": (
        lambda b: b["context"].update(draftOrders={"resourceType": "List"}),
        "context.draftOrders.resourceType",
    ),
    "draftOrders entry without resource": (
        lambda b: b["context"]["draftOrders"]["entry"].append({"fullUrl": "x"}),
        "context.draftOrders.entry",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_ENVELOPES))
def test_invalid_envelope_is_400_naming_the_field(client, case):
    change, location = INVALID_ENVELOPES[case]
    issues = outcome(client.post(URL, json=mutate(change)), 400)
    assert location in where(issues), issues


def test_body_that_is_not_an_object_is_400(client):
    assert where(outcome(client.post(URL, json=[1, 2]), 400)) == {"$"}


def test_malformed_json_is_400(client):
    response = client.post(
        URL, content=b'{"hook": "order-select",', headers={"content-type": "application/json"}
    )
    issues = outcome(response, 400)
    assert "malformed JSON" in issues[0]["diagnostics"]


def test_unknown_service_is_404(client):
    issues = outcome(client.post("/cds-services/no-such-service", json=hook_request("order-select")), 404)
    assert "no-such-service" in issues[0]["diagnostics"]


def test_unknown_path_is_404(client):
    outcome(client.get("/nowhere"), 404)


def test_wrong_method_is_405(client):
    outcome(client.get(URL), 405)
    outcome(client.delete("/cds-services"), 405)


def test_body_over_the_limit_is_413(client_factory):
    client = client_factory(max_body_bytes=2048)
    body = hook_request("order-select")
    body["padding"] = "x" * 4096
    outcome(client.post(URL, json=body), 413)
    # also when streamed without a Content-Length header
    chunks = iter([b'{"padding": "', b"x" * 4096, b'"}'])
    outcome(client.post(URL, content=chunks, headers={"content-type": "application/json"}), 413)


def test_non_json_content_type_is_415(client):
    issues = outcome(
        client.post(URL, content=b"hook=order-select", headers={"content-type": "text/plain"}), 415
    )
    assert where(issues) == {"header.Content-Type"}


def test_json_with_charset_is_accepted(client):
    import orjson

    response = client.post(
        URL,
        content=orjson.dumps(hook_request("order-select")),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_internal_errors_are_500_without_a_stack_trace(client, monkeypatch):
    import cds_service.web.routes as routes

    async def explode(*args, **kwargs):
        raise KeyError("secret-internal-detail")

    monkeypatch.setattr(routes, "call_service", explode)
    issues = outcome(client.post(URL, json=hook_request("order-select")), 500)
    assert "secret-internal-detail" not in str(issues)


MALFORMED = {
    "status as a list": (lambda r: r.update(status=["active"]), "status"),
    "code as a string": (lambda r: r.update(code="M96.1"), "code"),
    "coding as a string": (lambda r: r.update(code={"coding": "M96.1"}), "code.coding"),
    "date as an object": (lambda r: r.update(onsetDateTime={"value": "2026-01-01"}), "onsetDateTime"),
    "clinicalStatus as a list": (lambda r: r.update(clinicalStatus=[]), "clinicalStatus"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_prefetch_resource_is_400_at_its_location(client, case):
    change, path = MALFORMED[case]
    body = hook_request("order-select")
    change(body["prefetch"]["conditions"]["entry"][0]["resource"])
    issues = outcome(client.post(URL, json=body), 400)
    assert where(issues) == {f"prefetch.conditions.entry[0].resource.{path}"}


def test_malformed_data_no_rule_reads_does_not_refuse_the_call(client):
    """Only what the rules read is checked: an unrelated problem-list entry (hypertension) with a
    malformed onset changes nothing, while the same on the index fusion is refused (above)."""
    body = hook_request("order-select")
    expected = client.post(URL, json=body)
    unrelated = {
        "resourceType": "Condition",
        "id": "unrelated-hypertension",
        "subject": {"reference": f"Patient/{body['context']['patientId']}"},
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]},
        "onsetDateTime": {"value": "2020-01-01"},
    }
    body["prefetch"]["conditions"]["entry"].append({"resource": unrelated})
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    topics = [card["source"]["topic"]["code"] for card in response.json()["cards"]]
    assert topics == [card["source"]["topic"]["code"] for card in expected.json()["cards"]]


def test_malformed_draft_order_is_400_at_its_location(client):
    body = hook_request("order-select")
    body["context"]["draftOrders"]["entry"][0]["resource"]["status"] = {"draft": True}
    issues = outcome(client.post(URL, json=body), 400)
    assert where(issues) == {"context.draftOrders.entry[0].resource.status"}
