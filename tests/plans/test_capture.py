"""Which Questionnaire items record each criterion, found at load from what the rules read (#16): what a
card's SMART link opens the capture app on."""

from __future__ import annotations

import copy

from cds_service.plans.capture import with_capture
from cds_service.plans.loader import load_ruleset
from cds_service.plans.model import Criterion, RuleSet

from support.hooks import ROOT

RULESET = load_ruleset(ROOT / "plandefinitions")
SCREEN = RULESET.artifacts["Questionnaire"]["post-fusion-screen"]


def criterion(ruleset: RuleSet, code: str) -> Criterion:
    return next(c for plan in ruleset.plans for c in plan.criteria if c.code == code)


def recorded_by(ruleset: RuleSet, code: str) -> list[str] | None:
    capture = criterion(ruleset, code).capture
    return None if capture is None else [i for i in capture.form.link_ids if i in capture.items]


def test_each_criterion_is_recorded_by_the_items_whose_records_its_rules_read():
    assert recorded_by(RULESET, "R4") == [  # the attestation, or a block with its target (V2-15)
        "imaging-symptom-correlation",
        "diagnostic-block-relief",
        "block-type",
        "hardware-block-relief",
    ]
    assert recorded_by(RULESET, "R3") == ["unable-to-work-due-to-back-pain"]  # ODI is not on the screen
    assert recorded_by(RULESET, "H1") == ["peri-screw-lucency"]
    assert recorded_by(RULESET, "C1") == ["outside-care"]  # PT given elsewhere (V2-33)
    assert recorded_by(RULESET, "C4") == ["nsaid-contraindicated"]  # through its requiredWhen (V2-14)
    assert recorded_by(RULESET, "X6") == ["rf-wound-drainage"]  # through RF-3
    for code in ("R1", "C3", "X4", "P1"):  # dates, medications, diagnoses: the EHR's own records
        assert recorded_by(RULESET, code) is None, code
    capture = criterion(RULESET, "R4").capture
    assert capture is not None and capture.form.canonical == f"{SCREEN['url']}|{SCREEN['version']}"


def test_a_criterion_reading_another_plans_criteria_is_recorded_by_what_those_read():
    """R2 reads conservative care through `unmet`: its criteria, not the cards of that plan (which read the
    red flags), so the red-flag screen is not among R2's items."""
    items = recorded_by(RULESET, "R2")
    assert items == ["nsaid-contraindicated", "outside-care"]


def test_the_first_questionnaire_that_records_a_criterion_is_the_one_its_link_opens():
    later = copy.deepcopy(SCREEN) | {"version": "3.0.0"}
    unrelated = copy.deepcopy(SCREEN) | {"version": "0.1.0", "item": [SCREEN["item"][0]]}  # red flags only
    plans = with_capture(RULESET.plans, [unrelated, later, SCREEN], RULESET.valuesets, RULESET.fact_rules())
    r4 = next(c for plan in plans for c in plan.criteria if c.code == "R4")
    assert r4.capture is not None and r4.capture.form.canonical.endswith("|3.0.0")
    without = with_capture(RULESET.plans, [], RULESET.valuesets, RULESET.fact_rules())
    assert all(c.capture is None for plan in without for c in plan.criteria)
