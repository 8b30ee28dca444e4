"""Revision 2, the safety area (RULES.md section 8.1, V2-1 V2-2 V2-7 V2-8 V2-9 V2-11, and the red-flag parts
of V2-22 and V2-28): the edges the fixture cases p50-p59 cannot isolate, on small variants of those charts.

Each test builds a chart with the synthetic builders, asks the service as an EHR would (prefetch answered from
the chart) and reads the cards: which rules fire, and for the red-flag cards what they say and suggest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from starlette.testclient import TestClient

from support.hooks import SERVICES
from support.requests import discovery_templates, hook_request
from support.synthetic import (
    ICD10PCS,
    SNOMED,
    Chart,
    build_cases,
    condition,
    days_ago,
    in_scope,
    instant_ago,
    local_flag,
    observation,
    procedure,
)

Cards = list[dict[str, Any]]
RED_FLAG_RULES = {f"RF-{n}" for n in range(1, 8)}


def ask(
    client: TestClient, chart: Chart, hook: str = "patient-view", drafts: list[str] | None = None
) -> Cards:
    """The cards the service gives for one call on this chart."""
    selections = drafts if hook == "order-select" else None
    chart.calls = []
    chart.call("probe", hook, [], drafts=drafts, selections=selections)
    case = chart.to_json()
    body = hook_request(case, case["calls"][0], discovery_templates(client)[hook])
    response = client.post(f"/cds-services/{SERVICES[hook]}", json=body)
    assert response.status_code == 200, response.text
    cards: Cards = response.json()["cards"]
    return cards


def rules(cards: Cards) -> list[str]:
    return sorted(card["source"]["topic"]["code"] for card in cards)


def fused(case_id: str, days: int = 400) -> Chart:
    """A lumbar fusion n days ago and nothing else: no pain, so out of scope for the pain pathway."""
    ch = Chart(case_id, "probe")
    ch.fusion(days)
    ch.never_smoked()
    return ch


# --- V2-1: who is checked for red flags ------------------------------------------------------------------


def test_v2_1_recent_laminotomy_without_fusion_gets_red_flags(client: TestClient) -> None:
    ch = Chart("probe-v2-1-laminotomy", "probe")
    ch.add(procedure("63030", performed=days_ago(60)))
    ch.add(condition("R32", onset=days_ago(2), display="Unspecified urinary incontinence"))
    assert rules(ask(client, ch)) == ["RF-1"]


def test_v2_1_old_laminotomy_without_fusion_is_not_checked(client: TestClient) -> None:
    ch = Chart("probe-v2-1-old-laminotomy", "probe")
    ch.add(procedure("63030", performed=days_ago(400)))
    ch.add(condition("R32", onset=days_ago(2), display="Unspecified urinary incontinence"))
    assert ask(client, ch) == []


def test_v2_1_arthrodesis_status_only_gets_red_flags(client: TestClient) -> None:
    ch = Chart("probe-v2-1-z98", "probe")
    ch.add(condition("Z98.1", recorded=days_ago(700)))
    ch.add(local_flag("rf-unremitting-night-pain", True, 3))
    assert rules(ask(client, ch)) == ["RF-5"]


def test_v2_1_red_flags_need_some_spine_history(client: TestClient) -> None:
    ch = Chart("probe-v2-1-no-spine", "probe")
    ch.add(condition("G83.4", onset=days_ago(2)))
    assert ask(client, ch) == []


# --- V2-2: pain must be post-fusion ----------------------------------------------------------------------


@pytest.mark.parametrize(("recorded", "expected"), [(100, ["PATH-NODATE"]), (500, [])])
def test_v2_2_undated_fusion_counts_pain_recorded_in_the_last_year(
    client: TestClient, recorded: int, expected: list[str]
) -> None:
    ch = Chart(f"probe-v2-2-undated-{recorded}", "probe")
    ch.add(condition("Z98.1", recorded=days_ago(900)))
    ch.add(condition("M54.50", onset=days_ago(recorded)))
    ch.never_smoked()
    assert rules(ask(client, ch)) == expected


def site_parameters(tmp_path: Path, **values: Any) -> Path:
    """A site Parameters file (CDS_PARAMETERS_FILE) with the given values."""
    entries = []
    for name, value in values.items():
        kind = (
            "valueBoolean"
            if isinstance(value, bool)
            else "valueDecimal"
            if isinstance(value, float)
            else "valueInteger"
        )
        entries.append({"name": name.replace("_", "."), kind: value})
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"resourceType": "Parameters", "parameter": entries}))
    return site


def test_v2_2_pain_score_before_the_fusion_does_not_count(
    client_factory: Callable[..., TestClient], tmp_path: Path
) -> None:
    """A reading chosen: the 90-day pain score must also be dated on or after the index fusion. Inside the
    healing window only a site that shows PATH-EARLY (pathway.showEarly) can see the difference."""
    early = client_factory(parameters_file=site_parameters(tmp_path, pathway_showEarly=True))
    before = fused("probe-v2-2-preop-nrs", days=20)
    before.nrs(8, 60)
    after = fused("probe-v2-2-postop-nrs", days=20)
    after.nrs(8, 10)
    assert ask(early, before) == []
    assert rules(ask(early, after)) == ["PATH-EARLY"]


def test_v2_2_a_newer_diagnosis_keeps_the_patient_in_scope(client: TestClient) -> None:
    ch = fused("probe-v2-2-newer-diagnosis")
    ch.nrs(2, 20)
    ch.add(condition("M96.1", onset=days_ago(10)))
    assert rules(ask(client, ch)) == ["PATH-CC-INCOMPLETE"]


# --- V2-7: post-operative urinary retention --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "surgery_days", "onset_days", "fires"),
    [
        ("R33.9", 4, 0, False),  # retention on day 4 after the fusion
        ("R33.9", 12, 2, True),  # day 10: outside redFlag.postOpRetentionDays (7)
        ("R32", 4, 0, True),  # incontinence always counts
        ("R15.9", 3, 1, True),
    ],
)
def test_v2_7_retention_just_after_surgery(
    client: TestClient, code: str, surgery_days: int, onset_days: int, fires: bool
) -> None:
    ch = fused(f"probe-v2-7-{code}-{surgery_days}", days=surgery_days)
    ch.add(condition(code, onset=days_ago(onset_days), display="Bladder or bowel symptom"))
    assert rules(ask(client, ch)) == (["RF-1"] if fires else [])


def test_v2_7_retention_after_a_laminotomy_of_a_fused_patient(client: TestClient) -> None:
    ch = fused("probe-v2-7-laminotomy")
    ch.add(procedure("63047", performed=days_ago(5)))
    ch.add(condition("R33.9", onset=days_ago(1)))
    assert ask(client, ch) == []


# --- V2-8: fever threshold and CRP -----------------------------------------------------------------------


def fever(case_id: str, celsius: float) -> Chart:
    ch = fused(case_id)
    ch.add(observation("8310-5", effective=instant_ago(2), value=celsius, unit="Cel"))
    ch.add(local_flag("rf-wound-drainage", True, 2))
    return ch


def test_v2_8_fever_threshold_is_the_site_parameter(
    client: TestClient, client_factory: Callable[..., TestClient], tmp_path: Path
) -> None:
    assert ask(client, fever("probe-v2-8-fever-38-3", 38.3)) == []
    assert rules(ask(client, fever("probe-v2-8-fever-38-7", 38.7))) == ["RF-3"]
    strict = client_factory(parameters_file=site_parameters(tmp_path, redFlag_feverC=38.0))
    cards = ask(strict, fever("probe-v2-8-fever-38-3-site", 38.3))
    assert rules(cards) == ["RF-3"]
    assert "over 38 °C" in cards[0]["detail"]


def scs_candidate(case_id: str) -> tuple[Chart, str]:
    """p57's chart without its CRP: every SCS criterion met, and a stimulator trial draft."""
    (p57,) = [c for c in build_cases() if c["id"] == "p57-v2-8-raised-crp-scs"]
    ch = Chart(case_id, "probe")
    for entry in p57["bundle"]["entry"][1:]:
        resource = {k: v for k, v in entry["resource"].items() if k not in {"id", "subject", "patient"}}
        if (resource.get("code") or {}).get("coding", [{}])[0].get("code") != "1988-5":
            ch.add(resource)
    return ch, ch.draft_order("63650")


def x6(cards: Cards) -> str:
    (scs,) = [card for card in cards if card["source"]["topic"]["code"].startswith("SCS-")]
    (line,) = [c for c in scs["extension"]["postfusion-cds.criteria"] if c["id"] == "X6"]
    return str(line["status"])


def test_v2_8_crp_too_soon_after_surgery_makes_x6_not_documented(client: TestClient) -> None:
    ch, scs = scs_candidate("probe-v2-8-crp-early")
    ch.add(procedure("22852", performed=days_ago(25)))  # hardware removal 25 d ago
    ch.add(observation("1988-5", effective=instant_ago(5), value=45, unit="mg/L"))  # post-op day 20
    assert "LAB-CRP" not in rules(ask(client, ch))
    assert x6(ask(client, ch, "order-sign", [scs])) == "not-documented"


def test_v2_8_normal_crp_leaves_x6_met(client: TestClient) -> None:
    ch, scs = scs_candidate("probe-v2-8-crp-normal")
    ch.add(observation("1988-5", effective=instant_ago(5), value=4, unit="mg/L"))
    assert rules(ask(client, ch, "order-sign", [scs])) == ["SCS-MET"]
    assert x6(ask(client, ch, "order-sign", [scs])) == "met"


# --- V2-9: a lumbar fusion is a lumbar fusion --------------------------------------------------------------


def test_v2_9_add_on_on_the_day_of_a_lumbar_primary_counts(client: TestClient) -> None:
    ch = Chart("probe-v2-9-same-day", "probe")
    ch.add(procedure("22612", performed=days_ago(400)))
    ch.add(procedure("22614", performed=days_ago(400), display="Arthrodesis, each additional interspace"))
    ch.pain(onset=300)
    ch.never_smoked()
    assert rules(ask(client, ch)) == ["PATH-CC-INCOMPLETE"]


def test_v2_9_generic_fusion_without_body_site_is_not_lumbar(client: TestClient) -> None:
    ch = Chart("probe-v2-9-generic", "probe")
    ch.add(procedure("55705006", system=SNOMED, performed=days_ago(300), display="Spinal fusion"))
    ch.pain(onset=250)
    ch.never_smoked()
    assert ask(client, ch) == []
    ch.add(local_flag("rf-hardware-grinding-or-bulge", True, 2))  # still spinal-fusion evidence (V2-1)
    assert rules(ask(client, ch)) == ["RF-7"]


def test_v2_9_body_site_text_names_the_lumbar_spine(client: TestClient) -> None:
    ch = Chart("probe-v2-9-site-text", "probe")
    fusion = procedure("55705006", system=SNOMED, performed=days_ago(300), display="Spinal fusion")
    fusion["bodySite"] = [{"text": "Lumbosacral spine, L5-S1"}]
    ch.add(fusion)
    ch.pain(onset=250)
    ch.never_smoked()
    assert rules(ask(client, ch)) == ["PATH-CC-INCOMPLETE"]


@pytest.mark.parametrize(("code", "expected"), [("0SG00AJ", ["PATH-CC-INCOMPLETE"]), ("0RG10A0", [])])
def test_v2_9_icd_10_pcs_lumbar_counts_and_cervical_does_not(
    client: TestClient, code: str, expected: list[str]
) -> None:
    ch = Chart(f"probe-v2-9-pcs-{code}", "probe")
    ch.add(procedure(code, system=ICD10PCS, performed=days_ago(300), display="Fusion of vertebral joint"))
    ch.pain(onset=250)
    ch.never_smoked()
    assert rules(ask(client, ch)) == expected


def test_v2_9_cervical_pcs_fusion_is_a_cervical_fusion_for_rf_6(client: TestClient) -> None:
    ch = Chart("probe-v2-9-pcs-rf6", "probe")
    ch.add(procedure("0RG20A0", system=ICD10PCS, performed=days_ago(30), display="Fusion of cervical joints"))
    ch.add(local_flag("rf-neck-stiffness", True, 1))
    ch.add(condition("R06.00", onset=days_ago(1), display="Dyspnea, unspecified"))
    assert rules(ask(client, ch)) == ["RF-6"]


# --- V2-11: cancer and palliative care ---------------------------------------------------------------------


@pytest.mark.parametrize("code", ["C41.2", "C72.0", "C79.52", "C90.00", "Z51.5"])
def test_v2_11_no_pathway_card(client: TestClient, code: str) -> None:
    ch = Chart(f"probe-v2-11-{code}", "probe")
    in_scope(ch)
    assert rules(ask(client, ch)) == ["PATH-CC-INCOMPLETE"]
    ch.add(condition(code, onset=days_ago(60), display="Excluding condition"))
    assert ask(client, ch) == []


def test_v2_11_resolved_cancer_does_not_exclude(client: TestClient) -> None:
    ch = Chart("probe-v2-11-resolved", "probe")
    in_scope(ch)
    ch.add(condition("C41.2", clinical="resolved", onset=days_ago(900), display="Old vertebral tumour"))
    assert rules(ask(client, ch)) == ["PATH-CC-INCOMPLETE"]


# --- V2-22 and V2-28: what the red-flag cards say and suggest --------------------------------------------


def fixture_cards(client: TestClient) -> list[tuple[str, dict[str, Any]]]:
    """(call, card) for every red-flag and LAB-CRP card of the fixture cases."""
    found = []
    templates = discovery_templates(client)
    for case in build_cases():
        for call in case["calls"]:
            if not any(c["ruleId"] in RED_FLAG_RULES | {"LAB-CRP"} for c in call["expected"]):
                continue
            body = hook_request(case, call, templates[call["hook"]])
            response = client.post(f"/cds-services/{SERVICES[call['hook']]}", json=body)
            for card in response.json()["cards"]:
                if card["source"]["topic"]["code"] in RED_FLAG_RULES | {"LAB-CRP"}:
                    found.append((f"{case['id']}/{call['name']}", card))
    return found


def test_v2_28_every_red_flag_card_suggests_an_urgent_order(client: TestClient) -> None:
    found = fixture_cards(client)
    assert {card["source"]["topic"]["code"] for _, card in found} == RED_FLAG_RULES | {"LAB-CRP"}
    for where, card in found:
        assert card["suggestions"], where
        for suggestion in card["suggestions"]:
            (action,) = suggestion["actions"]
            resource = action["resource"]
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            assert resource["status"] == "draft" and resource["intent"] == "order", where
            assert resource["priority"] in {"urgent", "stat"}, where
            assert resource["subject"]["reference"].startswith("Patient/"), where
            assert resource["category"][0]["coding"][0]["system"] == SNOMED, where
            assert resource["reasonCode"][0]["coding"][0]["code"] == card["source"]["topic"]["code"]
            assert resource.get("reasonReference"), where
            assert resource["code"]["coding"][0]["code"] and resource["note"][0]["text"], where


def test_v2_28_raised_crp_suggests_repeat_crp_and_esr(client: TestClient) -> None:
    for where, card in fixture_cards(client):
        if card["source"]["topic"]["code"] != "LAB-CRP":
            continue
        codes = {s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in card["suggestions"]}
        assert codes == {"1988-5", "4537-7"}, where
        categories = {
            s["actions"][0]["resource"]["category"][0]["coding"][0]["code"] for s in card["suggestions"]
        }
        assert categories == {"108252007"}, where


def test_v2_22_red_flag_detail_says_what_was_not_evaluated(client: TestClient) -> None:
    notes = {}
    for where, card in fixture_cards(client):
        notes[where] = "not evaluated" in (card.get("detail") or "")
    assert notes["p50-v2-1-cauda-equina-low-pain/sign-revision"]
    assert notes["p18-rf1-cauda-equina-opioid/select-removal"]
    assert not notes["p50-v2-1-cauda-equina-low-pain/chart-open"]
    ch = fused("probe-v2-22-hardware")
    ch.add(condition("G83.4", onset=days_ago(1)))
    removal = ch.draft_order("22852")
    (card,) = ask(client, ch, "order-select", [removal])
    assert "hardware-removal criteria were not evaluated" in card["detail"]


FORBIDDEN = re.compile(
    r"\bseeds?\b|\bS00[0-4]\b|\bD\d+\b|site option|\b(?:Procedure|Condition|Observation)/", re.I
)


def test_v2_25_red_flag_texts_are_plain_words(client: TestClient) -> None:
    for where, card in fixture_cards(client):
        for text in (card["summary"], card.get("detail") or "", *(s["label"] for s in card["suggestions"])):
            assert not FORBIDDEN.search(text), (where, text)
        assert len(card["summary"]) <= 140
        assert card["detail"].startswith(("Found: ", "A CRP over")), where
