"""The loop a card's SMART link closes, with real parts only: the service on a port, HAPI FHIR as the EHR's
FHIR server (checking bearer tokens), the tests' SMART authorization server, and the capture app in Debian's
Chromium.

A synthetic patient, moved to today and put on HAPI, gets a patient-view card that cannot find something the
Questionnaire asks; the test follows the card's SMART link through the EHR launch (launch URL, authorize,
token with the patient and the card's appContext), answers the item the app opens on, saves twice, and
checks HAPI holds one QuestionnaireResponse and the Observations derived from it; then the hook, called again
without prefetch (so the service reads HAPI), shows the card RULES.md says. Every step is shot at 400 and
1200 px, and axe-core finds no serious violation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from cds_service.cli.cases import Case, load_cases, request_for
from cds_service.cli.rebase import rebase_case
from cds_service.cli.smoke import load
from cds_service.config import Settings
from cds_service.web.app import create_app

from support.browser import ROOT, require_browser, run_job
from support.fhir_server import free_port, serving
from support.smart_server import SmartServer

SHOTS = ROOT / "build" / "screenshots" / "capture"
WIDTHS = [400, 1200]  # an EHR's side panel, a desktop
CLINICIAN = {"resourceType": "Practitioner", "id": "capture-clinician", "name": [{"family": "Okafor"}]}
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


IMAGING = "Do the imaging findings match the patient's symptoms and examination?"
WEAKNESS = "Weakness in a leg or an arm that is getting worse?"


@dataclass(frozen=True)
class Loop:
    patient: str  # the synthetic case, moved to today
    call: str  # its hook call that shows the card
    before: str  # the rule of the card with the SMART link (EHR launch), or a rule shown before (standalone)
    after: str  # the rule RULES.md says the call shows once the answer is recorded
    answers: list[dict[str, str]]  # what the clinician answers, by the question's label


# R4 (§2.3): the attestation that imaging matches the symptoms completes R1-R5, so REV-NOT-MET -> REV-MET.
R4 = Loop(
    "p04-cc-complete-asd",
    "select-revision",
    "REV-NOT-MET",
    "REV-MET",
    [{"question": IMAGING, "answer": "Yes"}],
)
# A red flag on the screen (§2.6, V2-1): progressive weakness is RF-2, whatever the pathway card said.
RED_FLAG = Loop(
    "p35-cbt-outside-pt-window",
    "chart-open",
    "PATH-CC-INCOMPLETE",
    "RF-2",
    [{"question": WEAKNESS, "answer": "Yes"}],
)
SERVICES = {"patient-view": "postfusion-pain-patient-view", "order-select": "postfusion-pain-order-select"}


@pytest.fixture
def service(smart_hapi: Callable[..., tuple[str, SmartServer]]) -> Iterator[tuple[str, str, SmartServer]]:
    """(service base, HAPI base, SMART server): the service trusts HAPI as a FHIR server, serves the capture
    app on a loopback port, and lets the app call the authorization server."""
    require_browser()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hapi, smart = smart_hapi(f"{base}/capture/index.html")
    settings = Settings(
        auth="off",
        reload=False,
        quiet_cards=False,
        public_base_url=base,
        fhir_allowed_servers=[hapi],
        fhir_allow_http=True,
        capture_connect_sources=[smart.url],
        database_url="sqlite+aiosqlite:///:memory:",
        log_level="WARNING",
    )
    with serving(create_app(settings), port=port, lifespan=True):
        yield base, hapi, smart


def _cards(base: str, hapi: str, case: Case, call_name: str) -> list[dict[str, Any]]:
    """The call's cards, with no prefetch: the service reads HAPI."""
    call = next(call for call in case.calls if call.get("name") == call_name)
    response = httpx.post(
        f"{base}/cds-services/{SERVICES[call['hook']]}", json=request_for(case, call, hapi), timeout=60
    )
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def _rules(cards: list[dict[str, Any]]) -> set[str]:
    return {str(card["source"]["topic"]["code"]) for card in cards}


def _search(hapi: str, query: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{hapi}/{query}", headers=FHIR_JSON, timeout=60).json()
    return [entry["resource"] for entry in found.get("entry", [])]


@pytest.fixture
def today(loaded: str) -> Iterator[Callable[[str], Case]]:
    """`today(case_id)`: the case on HAPI with its record moved to today, and the clinician who records.
    Afterwards what the app wrote is deleted and the cases are back as the other tests know them."""
    originals: list[Case] = []
    httpx.put(f"{loaded}/Practitioner/{CLINICIAN['id']}", json=CLINICIAN, headers=FHIR_JSON, timeout=60)

    def moved(case_id: str) -> Case:
        case = next(case for case in load_cases() if case.id == case_id)
        originals.append(case)
        rebased = rebase_case(case, date.today())
        asyncio.run(load(loaded, [rebased]))
        return rebased

    try:
        yield moved
    finally:
        for case in originals:
            for kind in ("Observation", "Procedure", "QuestionnaireResponse"):
                for resource in _search(loaded, f"{kind}?subject=Patient/{case.id}&_count=200"):
                    if not resource.get("meta", {}).get("tag"):  # the fixtures' own are tagged
                        httpx.delete(f"{loaded}/{kind}/{resource['id']}", timeout=60)
        asyncio.run(load(loaded, originals))


def _drive(
    launch_url: str, saves: list[dict[str, Any]], shots: Path, keyboard: bool = False
) -> dict[str, Any]:
    return run_job(
        "capture.mjs",
        {
            "launchUrl": launch_url,
            "keyboard": keyboard,
            "saves": saves,
            "shots": {"dir": str(shots), "widths": WIDTHS},
            "axe": str(ROOT / "scripts" / "browser" / "node_modules" / "axe-core" / "axe.min.js"),
        },
    )


def _shown(items: list[str]) -> list[str]:
    """The labels the form shows for `items`: each group that holds one, then the items, in order (not those
    that wait for another answer: `enableWhen`)."""
    screen = json.loads((ROOT / "plandefinitions/questionnaires/post-fusion-screen.json").read_text())

    def walk(nodes: list[dict[str, Any]], inside: bool) -> list[str]:
        labels = []
        for node in nodes:
            if "enableWhen" in node:
                continue
            asked = inside or node["linkId"] in items
            below = walk(node.get("item", []), asked)
            if asked or below:
                labels += [node["text"], *below]
        return labels

    return walk(screen["item"], False)


def _written(hapi: str, case: Case) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The one QuestionnaireResponse the app wrote for the patient, and the Observations derived from it."""
    responses = _search(hapi, f"QuestionnaireResponse?subject=Patient/{case.id}")
    assert len(responses) == 1, f"{len(responses)} responses: a second save wrote it again"
    observations = _search(hapi, f"Observation?derived-from=QuestionnaireResponse/{responses[0]['id']}")
    return responses[0], observations


def test_a_cards_smart_link_records_what_is_missing_and_the_card_changes(
    service: tuple[str, str, SmartServer], today: Callable[[str], Case]
) -> None:
    base, hapi, smart = service
    case = today(R4.patient)
    card = next(card for card in _cards(base, hapi, case, R4.call) if _rules([card]) == {R4.before})
    link = next(link for link in card.get("links", []) if link.get("type") == "smart")
    assert link["url"] == f"{base}/capture/launch.html"
    assert "imaging-symptom-correlation" in json.loads(link["appContext"])["items"]

    launch = smart.launch(case.id, link["appContext"], f"Practitioner/{CLINICIAN['id']}")
    result = _drive(
        f"{link['url']}?{urlencode({'iss': hapi, 'launch': launch})}",
        [
            {"answers": R4.answers},
            {"answers": []},  # the same answers again: nothing new may be written
            {  # a change of mind, after the EHR ended the session (the access token is withdrawn)
                "answers": [{"question": IMAGING, "answer": "No"}],
                "revoke": f"{smart.url}/revoke",
            },
        ],
        SHOTS / "ehr-launch",
    )
    assert result["url"] == "/capture/index.html", result
    assert result["questions"] == _shown(json.loads(link["appContext"])["items"]), "exactly the card's items"
    assert result["violations"] == [], json.dumps(result["violations"])
    saved, again, refused = result["messages"]
    assert saved.startswith("Saved to the record") and IMAGING in saved, result
    assert again.startswith("Already in the record"), result
    assert "access token" in refused and refused.endswith("Nothing was saved."), refused
    assert smart.issued[-1].patient == case.id and smart.issued[-1].app_context == link["appContext"]

    response, observations = _written(hapi, case)
    assert response["author"]["reference"] == f"Practitioner/{CLINICIAN['id']}"
    assert [(o["code"]["coding"][0]["code"], o["valueBoolean"]) for o in observations] == [
        ("imaging-symptom-correlation", True)
    ], "one Observation, of the answer saved before the session ended"
    assert observations[0]["performer"] == [{"reference": f"Practitioner/{CLINICIAN['id']}"}]

    after = _rules(_cards(base, hapi, case, R4.call))
    assert R4.after in after and R4.before not in after, after
    for file in result["shots"]:
        assert Path(file).stat().st_size > 5000, f"{file} looks empty"


def test_a_standalone_launch_opens_the_whole_screen_and_a_red_flag_recorded_by_keyboard_gives_its_card(
    service: tuple[str, str, SmartServer], today: Callable[[str], Case]
) -> None:
    base, hapi, smart = service
    case = today(RED_FLAG.patient)
    assert RED_FLAG.before in _rules(_cards(base, hapi, case, RED_FLAG.call))
    smart.standalone_patient, smart.standalone_user = case.id, f"Practitioner/{CLINICIAN['id']}"
    result = _drive(
        f"{base}/capture/launch.html?{urlencode({'iss': hapi})}",
        [{"answers": RED_FLAG.answers}],
        SHOTS / "standalone-launch",
        keyboard=True,  # answered and saved without a mouse
    )
    assert result["violations"] == [], json.dumps(result["violations"])
    assert result["messages"][0].startswith("Saved to the record"), result
    assert smart.issued[-1].app_context is None and "launch/patient" in smart.issued[-1].scope

    _, observations = _written(hapi, case)
    assert [o["code"]["coding"][0]["code"] for o in observations] == ["rf-progressive-weakness"]
    assert RED_FLAG.after in _rules(_cards(base, hapi, case, RED_FLAG.call))
