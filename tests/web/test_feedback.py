"""Feedback is validated per spec, stored once, atomically, and survives a restart."""

from datetime import datetime

import pytest

from support.hooks import SERVICES

URL = f"/cds-services/{SERVICES['order-sign']}/feedback"
ACCEPTED = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93dd",
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
    "outcomeTimestamp": "2026-11-01T12:01:00Z",
}
OVERRIDDEN = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93dd",
    "outcome": "overridden",
    "overrideReason": {
        "reason": {
            "code": "criteria-met-elsewhere",
            "system": "http://postfusion-cds.org/fhir/CodeSystem/override-reason",
        },
        "userComment": "Imaging from the outside hospital shows a broken rod",
    },
    "outcomeTimestamp": "2026-11-01T12:02:00.52Z",
}


def stored(client) -> list:
    """The store's rows, read on the app's own event loop."""
    return client.portal.call(client.app_state["cds"].feedback.all)


def test_feedback_is_stored(client):
    response = client.post(URL, json={"feedback": [ACCEPTED, OVERRIDDEN]})
    assert response.status_code == 200
    assert response.json() == {"received": 2, "stored": 2}
    rows = stored(client)
    assert [(r.outcome, r.accepted_suggestions, r.override_code) for r in rows] == [
        ("accepted", ["e56e1945-20b3-4393-8503-a1a20fd73152"], None),
        ("overridden", [], "criteria-met-elsewhere"),
    ]
    assert {r.service_id for r in rows} == {SERVICES["order-sign"]}


def test_timestamps_are_stored_in_utc(client):
    local = {**OVERRIDDEN, "outcomeTimestamp": "2026-11-01T14:02:00+02:00"}
    assert client.post(URL, json={"feedback": [local]}).status_code == 200
    (row,) = stored(client)
    assert row.outcome_timestamp.replace(tzinfo=None) == datetime(2026, 11, 1, 12, 2)


def test_duplicate_submission_is_not_stored_twice(client):
    assert client.post(URL, json={"feedback": [ACCEPTED]}).json()["stored"] == 1
    assert client.post(URL, json={"feedback": [ACCEPTED, ACCEPTED]}).json()["stored"] == 0
    assert len(stored(client)) == 1


def test_feedback_survives_a_restart(client_factory):
    first = client_factory()
    assert first.post(URL, json={"feedback": [ACCEPTED, OVERRIDDEN]}).status_code == 200
    first.__exit__(None, None, None)
    second = client_factory()  # same SQLite file, new app and engine
    assert [r.card_uuid for r in stored(second)] == [ACCEPTED["card"], OVERRIDDEN["card"]]
    assert second.post(URL, json={"feedback": [OVERRIDDEN]}).json()["stored"] == 0


INVALID = {
    "empty list": ({"feedback": []}, "feedback"),
    "not a list": ({"feedback": ACCEPTED}, "feedback"),
    "missing card": ({"feedback": [{k: v for k, v in ACCEPTED.items() if k != "card"}]}, "feedback[0].card"),
    "unknown outcome": ({"feedback": [{**ACCEPTED, "outcome": "ignored"}]}, "feedback[0].outcome"),
    "accepted without suggestions": (
        {"feedback": [{k: v for k, v in ACCEPTED.items() if k != "acceptedSuggestions"}]},
        "feedback[0]",
    ),
    "timestamp without zone": (
        {"feedback": [{**ACCEPTED, "outcomeTimestamp": "2026-11-01T12:00:00"}]},
        "feedback[0].outcomeTimestamp",
    ),
    "timestamp not a date": (
        {"feedback": [{**ACCEPTED, "outcomeTimestamp": "yesterday"}]},
        "feedback[0].outcomeTimestamp",
    ),
    "timestamp with no UTC equivalent": (
        {"feedback": [{**ACCEPTED, "outcomeTimestamp": "0001-01-01T00:00:00+14:00"}]},
        "feedback[0].outcomeTimestamp",
    ),
    "empty override reason": (
        {"feedback": [{**OVERRIDDEN, "overrideReason": {}}]},
        "feedback[0].overrideReason",
    ),
    "reason coding without system": (
        {"feedback": [{**OVERRIDDEN, "overrideReason": {"reason": {"code": "x"}}}]},
        "feedback[0].overrideReason.reason.system",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_feedback_is_400_and_nothing_is_stored(client, case):
    body, location = INVALID[case]
    body = (
        {"feedback": [OVERRIDDEN, *body["feedback"]]}
        if isinstance(body["feedback"], list) and body["feedback"]
        else body
    )
    if location.startswith("feedback[0]"):
        location = location.replace("feedback[0]", "feedback[1]", 1)
    response = client.post(URL, json=body)
    assert response.status_code == 400
    expressions = {e for issue in response.json()["issue"] for e in issue.get("expression", [])}
    assert location in expressions, response.json()
    assert stored(client) == []


def test_feedback_for_an_unknown_service_is_404(client):
    assert client.post("/cds-services/nope/feedback", json={"feedback": [ACCEPTED]}).status_code == 404


def test_an_override_reason_longer_than_the_store_keeps_is_400_on_every_database(
    client_factory, database_url
):
    """#17 (10): SQLite kept a code longer than its column, PostgreSQL answered 500."""

    def submission(code: str) -> dict:
        item = {**OVERRIDDEN, "overrideReason": {**OVERRIDDEN["overrideReason"]}}
        item["overrideReason"]["reason"] = {**OVERRIDDEN["overrideReason"]["reason"], "code": code}
        return {"feedback": [item]}

    client = client_factory(database_url=database_url)
    response = client.post(URL, json=submission("c" * 300))
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert "feedback[0].overrideReason.reason.code" in str(issue.get("expression"))
    assert client.post(URL, json=submission("c" * 256)).status_code == 200
