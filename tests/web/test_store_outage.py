"""A database that goes away (PostgreSQL restarting) is a 503 with Retry-After and one log line per call, not
a 500 with a traceback; the service recovers by itself when it is back, and still stops promptly."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from support.databases import fresh_database
from support.hooks import SERVICES, hook_request
from support.tcp_relay import TcpRelay, relay_to
from support.waiting import wait_for

FEEDBACK = f"/cds-services/{SERVICES['order-sign']}/feedback"
CALL = f"/cds-services/{SERVICES['patient-view']}"
ITEM = {
    "card": "9368d37b-283f-44a0-93ea-547cebab93dd",
    "outcome": "overridden",
    "overrideReason": {"userComment": "a clinician's words, never in a log"},
    "outcomeTimestamp": "2026-11-01T12:02:00Z",
}


@pytest.fixture
def relayed(postgres: str) -> Iterator[tuple[str, TcpRelay]]:
    """A fresh PostgreSQL database, reached through a relay the test can cut."""
    with fresh_database(postgres) as url:
        parsed = make_url(url)
        with relay_to(parsed.host or "127.0.0.1", parsed.port or 5432) as relay:
            yield parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False), relay


def item(n: int) -> dict:
    return {**ITEM, "outcomeTimestamp": f"2026-11-01T12:{n:02d}:00Z"}


def test_an_outage_is_a_503_and_the_service_recovers(client_factory, relayed, caplog):
    url, relay = relayed
    client = client_factory(database_url=url)
    assert client.post(FEEDBACK, json={"feedback": [item(1)]}).status_code == 200

    relay.cut()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        answers = [client.post(FEEDBACK, json={"feedback": [item(n)]}) for n in range(2, 7)]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"].isdigit()
        issue = answer.json()["issue"][0]
        assert issue["code"] == "transient" and "database" in issue["diagnostics"]
    assert not [r for r in caplog.records if r.exc_info], "no traceback per call"
    assert "never in a log" not in caplog.text
    # hook calls that need no database still answer while it is away
    assert client.post(CALL, json=hook_request("patient-view")).status_code == 200

    relay.restore()
    wait_for(
        lambda: client.post(FEEDBACK, json={"feedback": [item(7)]}).status_code == 200,
        timeout=20,
        what="feedback stored again once the database is back",
    )


def test_the_service_stops_promptly_while_the_database_is_away(client_factory, relayed):
    url, relay = relayed
    client = client_factory(database_url=url)
    assert client.post(CALL, json=hook_request("patient-view")).status_code == 200  # cards to flush
    relay.cut()
    started = time.monotonic()
    client.__exit__(None, None, None)
    assert time.monotonic() - started < 15
