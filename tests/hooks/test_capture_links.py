"""A card's SMART link to the capture app (#16): on a card whose checklist misses something the post-fusion
screen records, opened on exactly those items, with the plan's checklist; gone once they are recorded."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from cds_service.forms.extract import extract
from cds_service.hooks import build_services, call_service
from cds_service.plans.canonical import CRITERIA_EXTENSION
from cds_service.plans.loader import load_ruleset

from support.every_call import CASES, app_at_t0, every_call
from support.hooks import ROOT, SERVICES, T0, hook_request
from support.requests import discovery_templates
from support.requests import hook_request as case_request

QUESTIONNAIRE = orjson.loads((ROOT / "plandefinitions/questionnaires/post-fusion-screen.json").read_bytes())
CANONICAL = f"{QUESTIONNAIRE['url']}|{QUESTIONNAIRE['version']}"
UNMET = {"not-met", "not-documented"}
R4_ITEMS = ["imaging-symptom-correlation", "diagnostic-block-relief", "block-type", "hardware-block-relief"]


def link_ids(items: list[dict[str, Any]]) -> Iterator[str]:
    for item in items:
        yield item["linkId"]
        yield from link_ids(item.get("item", []))


ORDER = list(link_ids(QUESTIONNAIRE["item"]))


def smart_links(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in card.get("links", []) if link.get("type") == "smart"]


def unmet(card: dict[str, Any]) -> bool:
    return any(
        item["status"] in UNMET or any(part["status"] in UNMET for part in item.get("parts", []))
        for item in card.get("extension", {}).get(CRITERIA_EXTENSION, [])
    )


def rule(card: dict[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])


@pytest.fixture(scope="module")
def every_card(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, dict[str, Any]]]:
    """(case id, call name, card) for every card of every fixture call."""
    with app_at_t0(tmp_path_factory.mktemp("store")) as client:
        return [
            (case["id"], call["name"], card) for case, call, cards in every_call(client) for card in cards
        ]


def test_every_smart_link_opens_the_questionnaire_on_items_it_has_with_the_cards_checklist(every_card):
    titles = {plan.id: plan.title for plan in load_ruleset(ROOT / "plandefinitions").plans}
    linked = []
    for case_id, call_name, card in every_card:
        for link in smart_links(card):
            where = (case_id, call_name, rule(card))
            assert link["url"] == "http://testserver/capture/launch.html", where
            assert link["label"] == "Record the missing items", where
            context = json.loads(link["appContext"])
            assert link["appContext"] == json.dumps(context, separators=(",", ":"), ensure_ascii=False), where
            assert set(context) == {"questionnaire", "items", "plan", "checklist"}, where
            assert context["questionnaire"] == CANONICAL, where
            assert context["items"] and set(context["items"]) <= set(ORDER), where
            assert context["items"] == sorted(set(context["items"]), key=ORDER.index), where  # in order, once
            assert context["plan"] == titles[card["source"]["url"].rpartition("/")[2]], where
            statuses = [item["status"] for item in card["extension"][CRITERIA_EXTENSION]]
            assert [line["status"] for line in context["checklist"]] == statuses, where
            assert all(line["text"] in card["detail"] for line in context["checklist"]), where
            assert "{{" not in link["appContext"], where
            linked.append(where)
    assert len(linked) > 30 and {call for _, call, _ in linked} >= {"chart-open", "sign-revision"}, linked


def test_only_a_card_that_shows_missing_criteria_links_the_capture_app(every_card):
    for case_id, call_name, card in every_card:
        if not unmet(card):
            assert not smart_links(card), (case_id, call_name, rule(card))
    # PATH-NODATE cannot tell C1-C7 without a fusion date and shows no checklist: nothing to record there
    nodate = [card for _, _, card in every_card if rule(card) == "PATH-NODATE"]
    assert nodate and all(unmet(card) and not smart_links(card) for card in nodate)
    assert not any(smart_links(card) for _, _, card in every_card if rule(card).startswith("RF-"))


def test_a_missing_r4_opens_the_app_on_what_can_localise_the_pain_source(every_card):
    (card,) = [
        card
        for case_id, call, card in every_card
        if (case_id, call) == ("p04-cc-complete-asd", "select-revision") and rule(card) == "REV-NOT-MET"
    ]
    unmet_ids = [item["id"] for item in card["extension"][CRITERIA_EXTENSION] if item["status"] in UNMET]
    assert unmet_ids == ["R4"]
    (link,) = smart_links(card)
    context = json.loads(link["appContext"])
    assert context["items"] == R4_ITEMS
    assert context["plan"] == "Revision fusion or exploration after lumbar fusion"
    r4 = context["checklist"][3]
    assert r4["status"] == "not-met" and r4["text"].startswith("Pain source localised: imaging-symptom")
    assert "50 %" in r4["text"] and "70 %" in r4["text"]  # the site's thresholds, as the card shows them


def _answer(link_id: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [value]}


def _group(link_id: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"linkId": link_id, "item": list(items)}


CBT_ALONGSIDE_PT = _group(  # p35's PT ran 2026-01-10 to 2026-03-07
    "outside-care",
    _answer(
        "outside-care-therapy", {"valueCoding": {"system": "http://snomed.info/sct", "code": "304891004"}}
    ),
    _answer("outside-care-start", {"valueDate": "2026-01-20"}),
    _answer("outside-care-end", {"valueDate": "2026-03-01"}),
    _answer("outside-care-sessions", {"valueInteger": 6}),
)
LOOPS = {  # RULES.md: all of R1-R5 met gives REV-MET; C1-C7 all met gives PATH-CC-COMPLETE (V2-33)
    "r4-attested": (
        "p04-cc-complete-asd",
        "select-revision",
        ("REV-NOT-MET", "REV-MET"),
        _group("pain-source", _answer("imaging-symptom-correlation", {"valueBoolean": True})),
    ),
    "r3-unable-to-work": (
        "p85-v2-17-odi-22-not-met",
        "sign-revision",
        ("REV-NOT-MET", "REV-MET"),
        _group("function-and-wishes", _answer("unable-to-work-due-to-back-pain", {"valueBoolean": True})),
    ),
    "outside-cbt": (
        "p35-cbt-outside-pt-window",
        "chart-open",
        ("PATH-CC-INCOMPLETE", "PATH-CC-COMPLETE"),
        CBT_ALONGSIDE_PT,
    ),
}


def _cards(client: TestClient, case: dict[str, Any], call_name: str) -> list[dict[str, Any]]:
    call = next(call for call in case["calls"] if call["name"] == call_name)
    body = case_request(case, call, discovery_templates(client)[call["hook"]])
    response = client.post(f"/cds-services/{SERVICES[call['hook']]}", json=body)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def _recorded(case: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    """The case with what $extract makes of a response answering `group`, as the app would write it."""
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE["url"],
        "status": "completed",
        "subject": {"reference": f"Patient/{case['id']}"},
        "author": {"reference": "Practitioner/capture-clinician"},
        "authored": "2026-10-30T10:00:00Z",
        "item": [group],
    }
    case = copy.deepcopy(case)
    for index, entry in enumerate(extract(QUESTIONNAIRE, response, T0)["entry"]):
        case["bundle"]["entry"].append({"resource": {**entry["resource"], "id": f"capture-{index}"}})
    return case


@pytest.mark.parametrize("loop", LOOPS.values(), ids=LOOPS.keys())
def test_recording_what_the_link_asks_for_changes_the_card_as_the_rules_say(tmp_path: Path, loop):
    case_id, call_name, (before, after), group = loop
    case = next(case for case in CASES if case["id"] == case_id)
    with app_at_t0(tmp_path) as client:
        (card,) = [card for card in _cards(client, case, call_name) if rule(card) == before]
        (link,) = smart_links(card)
        asked = set(json.loads(link["appContext"])["items"])
        assert {group["linkId"], *(item["linkId"] for item in group["item"])} & asked  # the app shows it
        shown = _cards(client, _recorded(case, group), call_name)
    assert after in {rule(card) for card in shown} and before not in {rule(card) for card in shown}
    assert not any(smart_links(card) for card in shown if rule(card) == after)


async def test_no_base_url_no_capture_link():
    ruleset = load_ruleset(ROOT / "plandefinitions")
    service = build_services(ruleset)[SERVICES["order-sign"]]
    body = hook_request("order-sign")
    with_base = (await call_service(service, ruleset, body, None, T0, "https://cds.example.org")).response
    without = (await call_service(service, ruleset, body, None, T0)).response
    assert [smart_links(card)[0]["url"] for card in with_base["cards"] if rule(card) == "REV-NOT-MET"] == [
        "https://cds.example.org/capture/launch.html"
    ]
    assert not any(smart_links(card) for card in without["cards"])


def test_the_link_uses_the_public_base_url_behind_a_proxy(client_factory):
    client = client_factory(public_base_url="https://cds.example.org/api")
    cards = client.post(f"/cds-services/{SERVICES['order-sign']}", json=hook_request("order-sign")).json()
    urls = {link["url"] for card in cards["cards"] for link in smart_links(card)}
    assert urls == {"https://cds.example.org/api/capture/launch.html"}
