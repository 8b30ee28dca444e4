"""Quiet when acknowledged (V2-30), end to end over HTTP with the real store: an overridden card stays away
for its patient and rule for `feedback.snoozeDays` unless its unmet list changes, order-sign does not repeat
what order-select said about the same draft within an hour, the store names no patient, and replicas agree.

The plan definitions change often, so cards are picked from what the calls return (a control app with quiet
cards off says what a call shows), never by hard-coded rule ids.
"""

from __future__ import annotations

import copy
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from cds_service.config import Settings
from cds_service.hooks import build_services, call_service
from cds_service.hooks.quiet import REPEAT_WINDOW, SNOOZE_DAYS, CardQuieter, unmet_signature
from cds_service.plans.canonical import DRAFT_EXTENSION
from cds_service.plans.loader import load_ruleset
from cds_service.store import Database, PatientKeys, QuietCards
from cds_service.web.app import create_app

from support.hooks import ROOT, SERVICES, T0, hook_request
from support.requests import discovery_templates
from support.requests import hook_request as case_request
from support.waiting import wait_for

SECRET = "quiet-cards-test-secret-0123456789abcdef"
CASES = sorted((ROOT / "fixtures" / "patients").glob("*.json"))
Card = dict[str, Any]


class Clock:
    """The app's clock, moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def open_app(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Apps on the test's database (SQLite unless `database_url` says otherwise), each with its clock."""
    opened: list[TestClient] = []

    def make(clock: Clock, **overrides: Any) -> TestClient:
        app = create_app(settings_factory(**overrides), clock=clock)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def control(open_app: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    """What a call shows when nothing is quiet: the same rules on a database of its own, quiet cards off."""
    return open_app(Clock(), quiet_cards=False, database_url=f"sqlite+aiosqlite:///{tmp_path / 'control.db'}")


def cards(client: TestClient, body: dict[str, Any]) -> list[Card]:
    response = client.post(f"/cds-services/{SERVICES[body['hook']]}", json=body)
    assert response.status_code == 200, response.text
    return list(response.json()["cards"])


def rule(card: Card) -> str:
    return str(card["source"]["topic"]["code"])


def shown(found: list[Card]) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((rule(card), unmet_signature(card)) for card in found)


def override(client: TestClient, hook: str, card: Card, clock: Clock) -> None:
    reasons = card.get("overrideReasons")
    reason = {"reason": reasons[0]} if reasons else {"userComment": "Not clinically applicable"}
    item = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": reason,
        "outcomeTimestamp": clock.now.isoformat(),
    }
    response = client.post(f"/cds-services/{SERVICES[hook]}/feedback", json={"feedback": [item]})
    assert response.status_code == 200, response.text


def case_calls(client: TestClient, hook: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(case, request) for every synthetic patient's call of `hook`."""
    templates = discovery_templates(client)
    for path in CASES:
        case = orjson.loads(path.read_bytes())
        for call in case["calls"]:
            if call["hook"] == hook:
                yield case, case_request(case, call, templates[hook])


def snooze_days(client: TestClient) -> int:
    days = int(client.app_state["cds"].rules.ruleset.params[SNOOZE_DAYS])
    assert days > 0, "the bundled rules snooze"
    return days


def flush(client: TestClient) -> None:
    client.portal.call(client.app_state["cds"].quiet.store.flush)


# -- snoozed after an override -------------------------------------------------------------------------------


def test_an_overridden_card_stays_quiet_and_the_other_rules_do_not(open_app) -> None:
    clock = Clock()
    app = open_app(clock)
    body = hook_request("patient-view")
    first = cards(app, body)
    assert len({rule(card) for card in first}) >= 2, "the example chart needs two rules for this test"
    override(app, "patient-view", first[0], clock)
    clock.advance(minutes=5)
    again = cards(app, body)
    assert shown(again) == shown([card for card in first if rule(card) != rule(first[0])])


def test_it_is_back_after_snooze_days(open_app) -> None:
    clock = Clock()
    app = open_app(clock)
    body = hook_request("patient-view")
    card = cards(app, body)[0]
    override(app, "patient-view", card, clock)
    clock.advance(days=snooze_days(app), minutes=-1)
    assert rule(card) not in {rule(c) for c in cards(app, body)}
    clock.advance(minutes=2)
    assert (rule(card), unmet_signature(card)) in shown(cards(app, body))


def test_another_patient_with_the_same_rule_is_not_quiet(open_app, control) -> None:
    patients: dict[str, list[dict[str, Any]]] = {}
    for case, body in case_calls(control, "patient-view"):
        for found in cards(control, body):
            patients.setdefault(rule(found), [])
            if all(b["context"]["patientId"] != case["id"] for b in patients[rule(found)]):
                patients[rule(found)].append(body)
    shared_rule, (body_a, body_b) = next((r, bodies[:2]) for r, bodies in patients.items() if len(bodies) > 1)
    clock = Clock()
    app = open_app(clock)
    override(app, "patient-view", next(c for c in cards(app, body_a) if rule(c) == shared_rule), clock)
    assert shared_rule not in {rule(c) for c in cards(app, body_a)}
    assert shared_rule in {rule(c) for c in cards(app, body_b)}


def _without(body: dict[str, Any], references: set[str]) -> dict[str, Any]:
    """The request with the resources `references` names taken out of its prefetch."""
    body = copy.deepcopy(body)
    for key, value in body["prefetch"].items():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            value["entry"] = [
                entry
                for entry in value.get("entry", [])
                if f"{entry['resource']['resourceType']}/{entry['resource'].get('id')}" not in references
            ]
        elif f"{value['resourceType']}/{value.get('id')}" in references:
            body["prefetch"][key] = None
    return body


def test_it_is_back_when_its_unmet_list_changes(open_app, control) -> None:
    """Take away the evidence of a met criterion: the same rule's card then lists more unmet, and shows."""
    body = hook_request("patient-view")
    changed = None
    for card in cards(control, body):
        for item in card.get("extension", {}).get("postfusion-cds.criteria", []):
            if item["status"] != "met" or not item.get("evidence"):
                continue
            variant = _without(body, set(item["evidence"]))
            same_rule = [c for c in cards(control, variant) if rule(c) == rule(card)]
            if same_rule and unmet_signature(same_rule[0]) != unmet_signature(card):
                changed = card, variant, unmet_signature(same_rule[0])
                break
        if changed:
            break
    assert changed, "no met criterion in the example chart whose evidence changes its card's unmet list"
    card, variant, variant_unmet = changed
    clock = Clock()
    app = open_app(clock)
    override(app, "patient-view", next(c for c in cards(app, body) if rule(c) == rule(card)), clock)
    assert rule(card) not in {rule(c) for c in cards(app, body)}
    assert (rule(card), variant_unmet) in shown(cards(app, variant))


def test_snooze_days_zero_turns_snoozing_off(open_app, tmp_path: Path) -> None:
    site = tmp_path / "site.json"
    site.write_text(
        json.dumps({"resourceType": "Parameters", "parameter": [{"name": SNOOZE_DAYS, "valueInteger": 0}]})
    )
    clock = Clock()
    app = open_app(clock, parameters_file=site)
    body = hook_request("patient-view")
    first = cards(app, body)
    override(app, "patient-view", first[0], clock)
    assert shown(cards(app, body)) == shown(first)


def test_the_setting_turns_quiet_cards_off(open_app, tmp_path: Path) -> None:
    clock = Clock()
    app = open_app(clock, quiet_cards=False)
    body = hook_request("patient-view")
    first = cards(app, body)
    override(app, "patient-view", first[0], clock)
    assert shown(cards(app, body)) == shown(first)
    tables = sqlite3.connect(tmp_path / "feedback.sqlite3")
    assert tables.execute("SELECT count(*) FROM shown_card").fetchone() == (0,)
    assert tables.execute("SELECT count(*) FROM generated_secret").fetchone() == (0,)


# -- order-select, then order-sign ---------------------------------------------------------------------------


def _select_then_sign(control: TestClient) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """A patient's order-select and order-sign requests, the selected draft signed, where sign would repeat
    cards select showed."""
    signs = {case["id"]: body for case, body in case_calls(control, "order-sign")}
    for case, select in case_calls(control, "order-select"):
        sign = signs.get(case["id"])
        drafts = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in _entries(sign)}
        if sign is None or not set(select["context"]["selections"]) <= drafts:
            continue
        repeated = set(shown(cards(control, select))) & set(shown(cards(control, sign)))
        if repeated:
            return select, sign, {rule_id for rule_id, _ in repeated}
    raise AssertionError("no synthetic patient whose order-sign repeats a card of its order-select")


def _entries(body: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(body["context"]["draftOrders"]["entry"]) if body else []


def test_order_sign_does_not_repeat_order_select_for_the_same_draft(open_app, control) -> None:
    select, sign, repeated = _select_then_sign(control)
    clock = Clock()
    app = open_app(clock)
    cards(app, select)
    clock.advance(minutes=10)
    expected = [c for c in cards(control, sign) if rule(c) not in repeated]
    assert shown(cards(app, sign)) == shown(expected)


def test_order_sign_repeats_it_after_an_hour(open_app, control) -> None:
    select, sign, _ = _select_then_sign(control)
    clock = Clock()
    app = open_app(clock)
    cards(app, select)
    clock.now += REPEAT_WINDOW + timedelta(minutes=1)
    assert shown(cards(app, sign)) == shown(cards(control, sign))


def _renamed_drafts(body: dict[str, Any]) -> dict[str, Any]:
    """The same orders, drafted again: every draft has a new id."""
    text = orjson.dumps(body).decode()
    for entry in _entries(body):
        text = text.replace(f'"{entry["resource"]["id"]}"', f'"{entry["resource"]["id"]}-redrafted"')
    return dict(orjson.loads(text))


def test_order_sign_shows_it_for_a_different_draft(open_app, control) -> None:
    select, sign, _ = _select_then_sign(control)
    redrafted = _renamed_drafts(sign)
    clock = Clock()
    app = open_app(clock)
    cards(app, select)
    clock.advance(minutes=10)
    assert shown(cards(app, redrafted)) == shown(cards(control, redrafted))


def test_order_sign_shows_the_card_of_a_new_draft_signed_beside_a_repeated_one(open_app, control) -> None:
    """Cards name their draft, so the repeat rule hides only the card about the draft select showed."""
    select, sign, repeated = _select_then_sign(control)
    copies = [
        {"resource": {**entry["resource"], "id": f"{entry['resource']['id']}-copy"}}
        for entry in _entries(sign)
        if f"{entry['resource']['resourceType']}/{entry['resource']['id']}" in select["context"]["selections"]
    ]
    both = copy.deepcopy(sign)
    both["context"]["draftOrders"]["entry"] += copies
    clock = Clock()
    app = open_app(clock)
    cards(app, select)
    clock.advance(minutes=10)
    about = {
        (rule(card), card["extension"].get(DRAFT_EXTENSION, ""))
        for card in cards(app, both)
        if "extension" in card
    }
    for rule_id in repeated:
        assert any(rule_id == r and draft.endswith("-copy") for r, draft in about), (rule_id, about)
        assert not any(rule_id == r and draft and not draft.endswith("-copy") for r, draft in about)


def test_a_red_flag_is_never_snoozed(open_app, control) -> None:
    """An overridden critical card comes back at once: a new red flag must not wait out an old override."""
    found = next(
        (body, card)
        for _, body in case_calls(control, "patient-view")
        for card in cards(control, body)
        if card["indicator"] == "critical"
    )
    body, _ = found
    clock = Clock()
    app = open_app(clock)
    critical = next(card for card in cards(app, body) if card["indicator"] == "critical")
    override(app, "patient-view", critical, clock)
    clock.advance(minutes=5)
    assert rule(critical) in {rule(card) for card in cards(app, body)}


# -- what the store holds, and replicas --------------------------------------------------------------------


def test_the_store_holds_no_patient_id_secret_or_draft_id(open_app, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="cds_service")
    clock = Clock()
    app = open_app(clock, patient_key_secret=SECRET)
    select, view = hook_request("order-select"), hook_request("patient-view")
    for body in (select, view):
        override(app, body["hook"], cards(app, body)[0], clock)
    flush(app)
    identifiers = {
        select["context"]["patientId"],
        view["context"]["patientId"],
        *(entry["resource"]["id"] for entry in select["context"]["draftOrders"]["entry"]),
    }
    database = sqlite3.connect(tmp_path / "feedback.sqlite3")
    quiet_tables = ("shown_card", "snooze", "generated_secret")
    rows = {table: database.execute(f"SELECT * FROM {table}").fetchall() for table in quiet_tables}
    assert rows["shown_card"] and rows["snooze"] and not rows["generated_secret"]
    everything = " ".join(
        str(row)
        for (table,) in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        for row in database.execute(f'SELECT * FROM "{table}"')
    )
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("cds_service"))
    keys = {row[0] for row in rows["snooze"]}
    for secret in (*identifiers, SECRET):
        assert secret not in everything
        assert secret not in logged
    assert not any(key in logged for key in keys)


def test_two_replicas_on_one_database_agree(database_url: str, open_app, control) -> None:
    """`database_url` first: its database outlives the apps, which flush into it as they stop."""
    secret = {"patient_key_secret": SECRET} if database_url.startswith("postgresql") else {}
    clock = Clock()
    first, second = (open_app(clock, database_url=database_url, **secret) for _ in range(2))
    view = hook_request("patient-view")
    card = cards(first, view)[0]
    flush(first)  # the shown card is written behind within a second; feedback comes later than that
    override(second, "patient-view", card, clock)
    assert rule(card) not in {rule(c) for c in cards(first, view)}
    select, sign, repeated = _select_then_sign(control)
    cards(first, select)
    expected = shown([c for c in cards(control, sign) if rule(c) not in repeated])
    wait_for(lambda: shown(cards(second, sign)) == expected, timeout=5, what="the other replica's card")


async def test_the_same_patient_id_at_another_ehr_is_someone_else(tmp_path: Path) -> None:
    """Patient ids are unique only within one EHR: an override at one does not quiet the other's patient."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'quiet.sqlite3'}")
    await database.migrate()
    quiet = CardQuieter(QuietCards(database), PatientKeys(SECRET.encode()))
    ruleset = load_ruleset(ROOT / "plandefinitions")
    service = build_services(ruleset)[SERVICES["patient-view"]]
    body = hook_request("patient-view")

    async def shown_to(caller: str) -> list[tuple[str, tuple[str, ...]]]:
        result = await call_service(service, ruleset, body, None, T0, quiet=quiet, caller=caller)
        return shown(result.response["cards"])

    first = (await call_service(service, ruleset, body, None, T0, quiet=quiet, caller="ehr-a|")).response
    card = first["cards"][0]
    await quiet.acknowledge([card["uuid"]], T0, ruleset.params)
    everything = shown(first["cards"])
    assert await shown_to("ehr-a|") == [item for item in everything if item[0] != rule(card)]
    assert await shown_to("ehr-b|") == everything
    await database.close()


# -- the secret ----------------------------------------------------------------------------------------------


def test_postgresql_needs_a_configured_secret(settings_factory) -> None:
    url = "postgresql+asyncpg://cds:pw@127.0.0.1:1/cds"  # never connected to: start-up stops before
    with pytest.raises(ValueError, match="CDS_PATIENT_KEY_SECRET is required with PostgreSQL"):
        create_app(settings_factory(database_url=url, patient_key_secret=None))
    create_app(settings_factory(database_url=url, patient_key_secret=SECRET))
    create_app(settings_factory(database_url=url, quiet_cards=False, patient_key_secret=None))


def test_a_short_secret_is_refused_without_showing_it(settings_factory) -> None:
    with pytest.raises(ValueError, match="at least 32 characters") as refused:
        create_app(settings_factory(patient_key_secret="too-short-a-secret"))
    assert "too-short-a-secret" not in str(refused.value)


def test_the_unmet_list_is_read_from_the_checklist_in_order_with_parts() -> None:
    card = {
        "extension": {
            "postfusion-cds.criteria": [
                {"id": "R1", "status": "met", "evidence": ["Procedure/x"]},
                {
                    "id": "R2",
                    "status": "not-met",
                    "parts": [{"id": "C1", "status": "met"}, {"id": "C2", "status": "not-met"}],
                },
                {"id": "R3", "status": "not-documented"},
                {"id": "R4", "status": "not-required"},
            ]
        }
    }
    assert unmet_signature(card) == ("R2", "C2", "R3")
    assert unmet_signature({"summary": "a card without a checklist"}) == ()
