"""Feedback on PostgreSQL (#17, 10): an override reason longer than the store keeps is a 400 on every
database; SQLite kept it, PostgreSQL answered 500."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from support.databases import fresh_database
from support.hooks import SERVICES

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
def fresh_postgres(postgres: str) -> Iterator[str]:
    with fresh_database(postgres) as url:
        yield url


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_an_override_reason_longer_than_the_store_keeps_is_400_on_every_database(
    database: str, client_factory: Callable[..., TestClient], request: pytest.FixtureRequest
) -> None:
    overrides = {}
    if database == "postgresql":
        overrides["database_url"] = request.getfixturevalue("fresh_postgres")
    client = client_factory(**overrides)
    response = client.post(URL, json=_submission(code="c" * 300))
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert "feedback[0].overrideReason.reason.code" in str(issue.get("expression"))
    assert client.post(URL, json=_submission(code="c" * 256)).status_code == 200
