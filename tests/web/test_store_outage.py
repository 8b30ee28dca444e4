"""Feedback on PostgreSQL when things go wrong (#17, 10): an override reason longer than the store keeps is a
400 on every database (SQLite kept it, PostgreSQL answered 500); a database that goes away answers 503 with
Retry-After and an OperationOutcome, and comes back by itself; no log line carries the statement's
parameters, which hold the clinician's free-text comment."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from support.databases import fresh_database
from support.hooks import SERVICES
from support.tcp_relay import Relay, relaying

URL = f"/cds-services/{SERVICES['order-sign']}/feedback"
COMMENT = "Outside imaging shows a broken rod, Dr Okafor agrees"
OVERRIDDEN = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93dd",
    "outcome": "overridden",
    "overrideReason": {
        "reason": {
            "code": "criteria-met-elsewhere",
            "system": "http://postfusion-cds.org/fhir/CodeSystem/override-reason",
        },
        "userComment": COMMENT,
    },
    "outcomeTimestamp": "2026-11-01T12:02:00Z",
}


def _submission(at: str = "2026-11-01T12:02:00Z", **reason: str) -> dict[str, object]:
    item = copy.deepcopy(OVERRIDDEN)
    item["outcomeTimestamp"] = at
    item["overrideReason"]["reason"].update(reason)  # type: ignore[index]
    return {"feedback": [item]}


@pytest.fixture
def relayed_postgres(postgres: str) -> Iterator[tuple[str, Relay]]:
    """A fresh PostgreSQL database reached through a relay the test can cut."""
    with fresh_database(postgres) as url:
        parsed = make_url(url)
        with relaying(parsed.host or "127.0.0.1", parsed.port or 5432) as relay:
            yield parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False), relay


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_an_override_reason_longer_than_the_store_keeps_is_400_on_every_database(
    database: str, client_factory: Callable[..., TestClient], request: pytest.FixtureRequest
) -> None:
    overrides = {}
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("relayed_postgres")[0]
    client = client_factory(**overrides)
    response = client.post(URL, json=_submission(code="c" * 300))
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert "feedback[0].overrideReason.reason.code" in str(issue.get("expression"))
    assert client.post(URL, json=_submission(code="c" * 256)).status_code == 200


def test_a_database_outage_is_503_with_retry_after_and_no_comment_in_the_log(
    relayed_postgres: tuple[str, Relay],
    client_factory: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, relay = relayed_postgres
    client = client_factory(database_url=url)
    assert client.post(URL, json=_submission()).status_code == 200
    caplog.clear()
    relay.cut()
    down = client.post(URL, json=_submission("2026-11-01T12:03:00Z"))
    assert down.status_code == 503, down.text
    assert down.headers["retry-after"] == "5"
    assert down.json()["issue"][0]["code"] == "transient"
    logged = "\n".join(record.getMessage() + str(record.exc_text or "") for record in caplog.records)
    assert COMMENT not in logged and "Traceback" not in logged
    relay.restore()
    assert client.post(URL, json=_submission("2026-11-01T12:04:00Z")).status_code == 200
