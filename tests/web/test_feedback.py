"""Feedback is validated per spec, checked against the card we issued, stored once, atomically, and survives
a restart."""

import time
from datetime import datetime

import pytest

from cds_service.store.issued_cards import LATE_CARD_WAIT_S

from support.hooks import SERVICES, hook_request

URL = f"/cds-services/{SERVICES['order-sign']}/feedback"
NEVER_ISSUED = "9368d37b-283f-44a0-93ea-547cebab93dd"
ACCEPTED = {
    "card": NEVER_ISSUED,
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
    "outcomeTimestamp": "2026-11-01T12:01:00Z",
}
OVERRIDDEN = {
    "card": NEVER_ISSUED,
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


def issue(client, hook: str = "order-sign") -> dict:
    """The first card of a real call of `hook` (order-sign's offers three suggestions and five reasons)."""
    response = client.post(f"/cds-services/{SERVICES[hook]}", json=hook_request(hook))
    assert response.status_code == 200, response.text
    return response.json()["cards"][0]


def accepted(card: dict, *suggestions: str, at: str = "2026-11-01T12:01:00Z") -> dict:
    ids = suggestions or (card["suggestions"][0]["uuid"],)
    return {
        **ACCEPTED,
        "card": card["uuid"],
        "acceptedSuggestions": [{"id": i} for i in ids],
        "outcomeTimestamp": at,
    }


def overridden(card: dict, reason: dict | None = None, at: str = "2026-11-01T12:02:00.52Z") -> dict:
    coding = reason or {k: card["overrideReasons"][0][k] for k in ("system", "code")}
    why = {**OVERRIDDEN["overrideReason"], "reason": coding}
    return {**OVERRIDDEN, "card": card["uuid"], "overrideReason": why, "outcomeTimestamp": at}


def refused(response, expression: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert expression in {e for issue in body["issue"] for e in issue.get("expression", [])}, body


def test_feedback_is_stored(client):
    card = issue(client)
    response = client.post(URL, json={"feedback": [accepted(card), overridden(card)]})
    assert response.status_code == 200
    assert response.json() == {"received": 2, "stored": 2}
    rows = stored(client)
    assert [(r.outcome, r.accepted_suggestions, r.override_code) for r in rows] == [
        ("accepted", [card["suggestions"][0]["uuid"]], None),
        ("overridden", [], card["overrideReasons"][0]["code"]),
    ]
    assert {r.service_id for r in rows} == {SERVICES["order-sign"]}


def test_timestamps_are_stored_in_utc(client):
    local = overridden(issue(client), at="2026-11-01T14:02:00+02:00")
    assert client.post(URL, json={"feedback": [local]}).status_code == 200
    (row,) = stored(client)
    assert row.outcome_timestamp.replace(tzinfo=None) == datetime(2026, 11, 1, 12, 2)


def test_duplicate_submission_is_not_stored_twice(client):
    item = accepted(issue(client))
    assert client.post(URL, json={"feedback": [item]}).json()["stored"] == 1
    assert client.post(URL, json={"feedback": [item, item]}).json()["stored"] == 0
    assert len(stored(client)) == 1


def test_feedback_survives_a_restart(client_factory):
    first = client_factory()
    card = issue(first)
    assert first.post(URL, json={"feedback": [accepted(card), overridden(card)]}).status_code == 200
    first.__exit__(None, None, None)
    second = client_factory()  # same SQLite file, new app and engine
    assert [r.card_uuid for r in stored(second)] == [card["uuid"], card["uuid"]]
    assert second.post(URL, json={"feedback": [overridden(card)]}).json()["stored"] == 0


# #17 (11): feedback was stored without looking at the card it names. Each case reproduces one observation;
# on the old code every one of them was a 200 that stored the whole submission.


@pytest.fixture
def app(client_factory, database_url):
    return client_factory(database_url=database_url)


def test_a_card_is_answered_only_at_the_feedback_endpoint_of_the_service_that_issued_it(app):
    mine, elsewhere = issue(app, "patient-view"), issue(app, "order-sign")
    item = {**overridden(elsewhere), "overrideReason": {"userComment": "not for this patient"}}
    response = app.post(
        f"/cds-services/{SERVICES['patient-view']}/feedback",
        json={"feedback": [accepted(mine), item]},
    )
    refused(response, "feedback[1].card")
    assert SERVICES["order-sign"] in response.json()["issue"][0]["diagnostics"]
    assert stored(app) == []  # all or nothing: the valid first item is not kept either


def test_an_accepted_suggestion_must_be_one_the_card_offered(app):
    card = issue(app)
    offered = card["suggestions"][0]["uuid"]
    refused(
        app.post(URL, json={"feedback": [accepted(card, offered, "e56e1945-20b3-4393-8503-a1a20fd73152")]}),
        "feedback[0].acceptedSuggestions[1].id",
    )
    other = issue(app)  # a suggestion of another card of ours is not this card's either
    refused(
        app.post(URL, json={"feedback": [accepted(card, other["suggestions"][0]["uuid"])]}),
        "feedback[0].acceptedSuggestions[0].id",
    )
    assert stored(app) == []
    every = [s["uuid"] for s in card["suggestions"]]
    assert app.post(URL, json={"feedback": [accepted(card, *every)]}).json()["stored"] == 1


def test_an_override_reason_must_be_one_the_card_offered(app):
    card = issue(app)
    offered = card["overrideReasons"][0]
    for reason in (
        {"system": offered["system"], "code": "not-offered"},
        {"system": "http://example.org/other-reasons", "code": offered["code"]},  # same code, other system
    ):
        refused(
            app.post(URL, json={"feedback": [overridden(card, reason)]}), "feedback[0].overrideReason.reason"
        )
    view = issue(app, "patient-view")  # patient-view cards offer no coded reasons: a comment only, or none
    assert "overrideReasons" not in view
    refused(
        app.post(
            f"/cds-services/{SERVICES['patient-view']}/feedback",
            json={"feedback": [overridden(view, offered)]},
        ),
        "feedback[0].overrideReason.reason",
    )
    assert stored(app) == []  # so the report can never show a reason the card did not offer
    comment_only = {**overridden(view, offered), "overrideReason": {"userComment": "seen elsewhere"}}
    no_reason = {k: v for k, v in overridden(card).items() if k != "overrideReason"}
    displayed = overridden(card, {**offered, "display": "the EHR's own wording"})  # display is the EHR's
    for service, item in (
        ("patient-view", comment_only),
        ("order-sign", no_reason),
        ("order-sign", displayed),
    ):
        response = app.post(f"/cds-services/{SERVICES[service]}/feedback", json={"feedback": [item]})
        assert response.json() == {"received": 1, "stored": 1}, response.text


def test_feedback_on_a_card_we_never_issued_is_stored_unattributed(app):
    """After waiting for another worker's write-behind: a 4xx would lose a clinician's answer for good (the
    EHR does not retry it) whenever the card's record is late or past retention; the report shows it apart."""
    started = time.monotonic()
    response = app.post(URL, json={"feedback": [ACCEPTED, OVERRIDDEN]})
    assert response.json() == {"received": 2, "stored": 2}, response.text
    assert time.monotonic() - started >= LATE_CARD_WAIT_S


def test_feedback_waits_for_a_card_another_worker_has_not_written_yet(client_factory, database_url):
    """Worker a writes its cards behind (within FLUSH_INTERVAL_S); feedback reaching worker b first is still
    checked against the card once a's write lands, instead of being stored unchecked."""
    a, b = client_factory(database_url=database_url), client_factory(database_url=database_url)
    card = issue(a)
    bogus = accepted(card, "e56e1945-20b3-4393-8503-a1a20fd73152")
    refused(b.post(URL, json={"feedback": [bogus]}), "feedback[0].acceptedSuggestions[0].id")
    assert b.post(URL, json={"feedback": [accepted(card)]}).json()["stored"] == 1


def test_an_outcome_far_in_the_future_is_refused(app):
    """The latest outcome of a card is the one that counts: a timestamp in the year 9999 would pin it."""
    card = issue(app)
    refused(
        app.post(URL, json={"feedback": [overridden(card, at="9999-01-01T00:00:00Z")]}),
        "feedback[0].outcomeTimestamp",
    )
    assert stored(app) == []


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
