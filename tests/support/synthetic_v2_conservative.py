"""Revision-2 cases for the conservative-care pathway and the patient-view risk and medication cards
(p60-p74, p90-p91).

Each case proves one change of RULES.md section 8 (V2-10, V2-12, V2-13, V2-14, V2-16, V2-18, V2-19, V2-20,
V2-22, V2-11) and says in its description what revision 1 did with the same record. The expected cards are
written from section 8, not from the plan definitions. T0 is 2026-11-01 (see ``synthetic``); "post-op day n"
is n days after the index fusion.
"""

from __future__ import annotations

from support.synthetic import (
    ICD10,
    LOCAL,
    LOINC,
    SNOMED,
    T0_TEXT,
    Chart,
    Json,
    card,
    case,
    code_of,
    condition,
    days_ago,
    imaging_study,
    in_scope,
    instant_ago,
    local_flag,
    medication_request,
    observation,
    service_request,
)


def _statement_over(text: str, start_days: int, end_days_ahead: int) -> Json:
    """A patient-reported medication taken over a period that runs past T0 (effectivePeriod)."""
    return {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": {"text": text},
        "effectivePeriod": {"start": days_ago(start_days), "end": days_ago(-end_days_ahead)},
        "dateAsserted": days_ago(start_days),
    }


def _bmi(value: float, days: int) -> Json:
    """A body-mass index (LOINC 39156-5) in kg/m2."""
    resource = observation("39156-5", effective=days_ago(days), value=value, unit="kg/m2")
    resource["code"] = code_of("39156-5", LOINC, "Body mass index (BMI) [Ratio]")
    return resource


def _complete_care_without_nsaid(ch: Chart, start: int = 300) -> None:
    """PT (8 sessions over 56 d) and two CBT sessions inside the PT window, but no NSAID trial."""
    ch.pt_course(start - 5)
    ch.cbt(start - 20)
    ch.cbt(start - 45)


@case
def p60() -> Chart:
    ch = Chart(
        "p60-v2-12-early-nsaid-pt",
        "V2-12 (the review's observation): fusion 190 d ago, ibuprofen on post-op day 10 and weekly PT from "
        "post-op day 15 to 64, CBT on post-op days 30 and 55. Evidence counts only from "
        "conservative.countFromDays (42) after the fusion: the NSAID does not count (C4) and only 4 PT "
        "sessions over 21 d do (C1); C7 runs from post-op day 43 (147 d, met). Revision 1 counted all of it, "
        "read the care as complete and, with ODI 52 %, an attested correlation and a confirmed "
        "pseudarthrosis, called the revision order REV-MET; now R2(C1,C4) is unmet.",
    )
    in_scope(ch, fusion_days=190)
    ch.nsaid(180, "197806")
    ch.pt_course(175, sessions=8, every=7)
    ch.cbt(160)
    ch.cbt(135)
    ch.add(observation("97909-6", effective=days_ago(10), value=52, unit="%"))
    study = ch.add(imaging_study(started=days_ago(40)))
    ch.add(
        observation(
            "imaging-symptom-correlation",
            system=LOCAL,
            effective=instant_ago(30),
            value=True,
            derived_from=[study],
        )
    )
    ch.add(condition("M96.0", onset=days_ago(40)))
    revision = ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C4")])
    ch.call("sign-revision", "order-sign", [card("REV-NOT-MET", "R2(C1,C4)")], drafts=[revision])
    return ch


@case
def p61() -> Chart:
    ch = Chart(
        "p61-v2-13-clock-from-first-pt",
        "V2-13: an NSAID trial 250 d ago but the structured programme (8 PT sessions with CBT) began only "
        "75 d ago. C7 runs from the first counted PT session: 75 d < 90, so C7 is unmet. Revision 1 started "
        "the failure clock at the NSAID and showed PATH-CC-COMPLETE.",
    )
    in_scope(ch)
    ch.nsaid(250, "7258")
    ch.pt_course(75)
    ch.cbt(60)
    ch.cbt(40)
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C7")])
    return ch


@case
def p62() -> Chart:
    ch = Chart(
        "p62-v2-13-no-counted-pt",
        "V2-13 and V2-12: fusion 400 d ago; 8 PT sessions on post-op days 5-33 (before countFromDays, so "
        "none counts), CBT 200 and 180 d ago, an NSAID 250 d ago. With no counted PT, C1 and C2 (CBT "
        "alongside PT) are unmet and the failure clock C7 is not documented. Revision 1 counted the early PT "
        "and started C7 at post-op day 5 (met), listing only C1,C2.",
    )
    in_scope(ch)
    ch.nsaid(250, "7258")
    ch.pt_course(395, sessions=8, every=4)
    ch.cbt(200)
    ch.cbt(180)
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C2,C7")])
    return ch


@case
def p63() -> Chart:
    ch = Chart(
        "p63-v2-14-ckd4-no-nsaid",
        "V2-14 (the review's observation): chronic kidney disease stage 4 (N18.4) and no NSAID trial, all "
        "other care complete: C4 is waived and shown as not required, so PATH-CC-COMPLETE. Revision 1 still "
        "demanded the NSAID trial (PATH-CC-INCOMPLETE C4).",
    )
    in_scope(ch)
    ch.add(condition("N18.4", onset=days_ago(900), display="Chronic kidney disease, stage 4 (severe)"))
    _complete_care_without_nsaid(ch)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p64() -> Chart:
    ch = Chart(
        "p64-v2-14-anticoagulant-text",
        "V2-14: a current apixaban prescription known only by its text ('Eliquis 5 mg tablet (apixaban)', "
        "authored 60 d ago) and no NSAID trial: C4 is waived, PATH-CC-COMPLETE. Revision 1 asked for an "
        "NSAID trial in an anticoagulated patient.",
        gender="male",
    )
    in_scope(ch)
    ch.add(medication_request(None, authored=days_ago(60), text="Eliquis 5 mg tablet (apixaban)"))
    _complete_care_without_nsaid(ch)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p65() -> Chart:
    ch = Chart(
        "p65-v2-14-gi-bleed-history",
        "V2-14: a resolved chronic gastric ulcer with haemorrhage (K25.4) three years ago, i.e. a history of "
        "GI bleeding, and no NSAID trial: C4 is waived, PATH-CC-COMPLETE. Revision 1: PATH-CC-INCOMPLETE C4.",
    )
    in_scope(ch)
    ch.add(
        condition(
            "K25.4",
            clinical="resolved",
            onset=days_ago(1100),
            display="Chronic or unspecified gastric ulcer with hemorrhage",
        )
    )
    _complete_care_without_nsaid(ch)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p66() -> Chart:
    ch = Chart(
        "p66-v2-10-trazodone-at-bedtime",
        "V2-10 (the review's observation): depression (F32.A, PHQ-9 13) and trazodone 50 mg at bedtime for "
        "sleep, no depression reasonCode: trazodone is not in AntidepressantsForDepression, so depression is "
        "untreated: C6d unmet and RISK-DEP (which suggests a behavioural-health referral, V2-28). Revision 1 "
        "read the trazodone as treatment and showed only PATH-CC-COMPLETE.",
    )
    in_scope(ch)
    ch.add(condition("F32.A", onset=days_ago(200)))
    ch.add(observation("44261-6", effective=days_ago(20), value=13))
    ch.add(medication_request("10737", authored=days_ago(60), text="trazodone 50 mg tablet at bedtime"))
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C6d"), card("RISK-DEP")])
    return ch


@case
def p67() -> Chart:
    ch = Chart(
        "p67-v2-10-stale-sertraline",
        "V2-10: recurrent depression (F33.1) and a sertraline order still 'active' but authored 250 d ago "
        "with no validity period: older than medication.currentDays (180), so not currently active and the "
        "depression is untreated (C6d, RISK-DEP). Revision 1 counted any 'active' order as current.",
        gender="male",
    )
    in_scope(ch)
    ch.add(condition("F33.1", onset=days_ago(500)))
    ch.add(medication_request("312940", authored=days_ago(250)))
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C6d"), card("RISK-DEP")])
    return ch


@case
def p68() -> Chart:
    ch = Chart(
        "p68-v2-10-statement-valid-past-t0",
        "V2-10 guard: depression (F32.A) treated with vortioxetine, a patient-reported MedicationStatement "
        "(text only) begun 300 d ago whose period runs 60 d past T0: although it started more than "
        "medication.currentDays ago, its period end is after T0, so it is current and depression is treated: "
        "PATH-CC-COMPLETE, no RISK-DEP. (Revision 1 agreed; the new 180-day rule must keep this exception.)",
    )
    in_scope(ch)
    ch.add(condition("F32.A", onset=days_ago(400)))
    ch.add(_statement_over("vortioxetine 10 mg tablet", 300, 60))
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p69() -> Chart:
    ch = Chart(
        "p69-v2-16-opioid-no-gabapentinoid",
        "V2-16 and V2-28: active lumbar radiculopathy, a current oxycodone prescription, PT/CBT/NSAID "
        "complete but no gabapentinoid and no epidural injection: PATH-CC-INCOMPLETE C3,C5, whose C3 advice "
        "says to review sedation and falls risk first, with a pain-medicine referral for the ESI. Selecting "
        "a "
        "gabapentin draft makes the sedating combination: MED-SEDATING (V2-19), whose detail says the draft "
        "would complete C3 and suggests reviewing the opioid. Revision 1 called that card MED-OPIOID-GABA.",
        gender="male",
    )
    in_scope(ch)
    ch.add(condition("M54.16", onset=days_ago(300)))
    ch.add(medication_request("1049621", authored=days_ago(30)))
    ch.full_conservative_care(300)
    gabapentin = ch.draft_medication("310431")
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C3,C5")])
    ch.call(
        "select-gabapentin",
        "order-select",
        [card("MED-SEDATING")],
        drafts=[gabapentin],
        selections=[gabapentin],
    )
    return ch


@case
def p70() -> Chart:
    ch = Chart(
        "p70-v2-18-referrals-last-week",
        "V2-18 (the review's observation) and V2-14: PT (91251008) and CBT (304891004) referrals placed 7 d "
        "ago and still active, no PT or CBT yet: C1, C2 and C7 unmet, their lines say the referral was "
        "placed and the card suggests neither again. A current smoker with a cessation referral 10 d ago: "
        "C6s met, no RISK-SMOKE. A clinician recorded nsaid-contraindicated = true: C4 not required. "
        "Revision 1 re-suggested both referrals and listed C4.",
    )
    in_scope(ch)
    ch.smoking("449868002", 20)
    ch.add(service_request("91251008", system=SNOMED, authored=days_ago(7)))
    ch.add(service_request("304891004", system=SNOMED, authored=days_ago(7)))
    ch.add(service_request("smoking-cessation-referral", system=LOCAL, authored=days_ago(10)))
    ch.add(local_flag("nsaid-contraindicated", True, 100))
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C2,C7")])
    return ch


@case
def p71() -> Chart:
    ch = Chart(
        "p71-v2-19-opioid-benzodiazepine-relaxant",
        "V2-19: current oxycodone with a current lorazepam known only by its text: MED-SEDATING at chart "
        "open (revision 1 only knew opioid + gabapentinoid and said nothing). Signing a cyclobenzaprine "
        "(muscle relaxant) draft adds a third sedating drug: MED-SEDATING, with the pharmacist review coded "
        "SNOMED CT 182836005 (not 432102000). Signing a naproxen draft creates no sedating combination: no "
        "card.",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(medication_request("1049621", authored=days_ago(40)))
    ch.add(medication_request(None, authored=days_ago(30), text="LORazepam 1 mg tablet"))
    relaxant = ch.draft(
        medication_request(None, status="draft", authored=T0_TEXT, text="cyclobenzaprine 10 mg")
    )
    naproxen = ch.draft(medication_request("198013", status="draft", authored=T0_TEXT))
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE"), card("MED-SEDATING")])
    ch.call("sign-relaxant", "order-sign", [card("MED-SEDATING")], drafts=[relaxant])
    ch.call("sign-naproxen", "order-sign", [], drafts=[naproxen])
    return ch


@case
def p72() -> Chart:
    ch = Chart(
        "p72-v2-20-bmi-vitamin-d",
        "V2-20 and V2-28: latest BMI 34.2 kg/m2 60 d ago (>= bmi.threshold 30): RISK-WEIGHT (new in "
        "revision 2); 25-OH vitamin D 18 ng/mL and no supplement: VITD-LOW, which now suggests a repeat "
        "25-OH vitamin D in 3 months. An older BMI of 27 does not matter: the latest wins.",
    )
    in_scope(ch)
    ch.full_conservative_care(300)
    ch.add(_bmi(27.0, 300))
    ch.add(_bmi(34.2, 60))
    ch.add(observation("62292-8", effective=days_ago(50), value=18, unit="ng/mL"))
    ch.call(
        "chart-open",
        "patient-view",
        [card("PATH-CC-COMPLETE"), card("RISK-WEIGHT"), card("VITD-LOW")],
    )
    return ch


@case
def p73() -> Chart:
    ch = Chart(
        "p73-v2-22-early-window-quiet",
        "V2-22: fusion 40 d ago with new low back pain (NRS 7), no red flag and no hardware problem: inside "
        "the healing window PATH-EARLY is off by default (pathway.showEarly false), so chart open gives no "
        "card. Revision 1 showed PATH-EARLY, which only said to wait.",
    )
    ch.fusion(40)
    ch.add(condition("M54.50", onset=days_ago(30)))
    ch.nrs(7, 3)
    ch.never_smoked()
    ch.call("chart-open", "patient-view", [])
    return ch


@case
def p74() -> Chart:
    ch = Chart(
        "p74-v2-11-metastatic-bone-disease",
        "V2-11: metastatic cancer in bone (C79.51, active), post-fusion pain, no PT or CBT, a current "
        "smoker with depression (PHQ-9 15), BMI 35 and current oxycodone + gabapentin: no elective card "
        "(no PATH, RISK-SMOKE, RISK-DEP or RISK-WEIGHT), but MED-SEDATING still applies. Revision 1 showed "
        "PATH-CC-INCOMPLETE, RISK-SMOKE, RISK-DEP and MED-OPIOID-GABA.",
    )
    in_scope(ch)
    ch.add(condition("C79.51", onset=days_ago(120), display="Secondary malignant neoplasm of bone"))
    ch.smoking("449868002", 15)
    ch.add(observation("44261-6", effective=days_ago(15), value=15))
    ch.add(_bmi(35.0, 30))
    ch.nsaid(250, "7258")
    ch.add(medication_request("1049621", authored=days_ago(20)))
    ch.add(medication_request("310431", authored=days_ago(20)))
    ch.call("chart-open", "patient-view", [card("MED-SEDATING")])
    return ch


@case
def p90() -> Chart:
    ch = Chart(
        "p90-v2-10-trazodone-for-depression",
        "V2-10: depression (F32.A, PHQ-9 13) and trazodone prescribed with a depression reasonCode (F32.A): "
        "a "
        "tricyclic, trazodone or doxepin counts as treatment when it is prescribed for depression, so C6d is "
        "met and there is no RISK-DEP (compare p66, the same drug at bedtime for sleep).",
    )
    in_scope(ch)
    ch.add(condition("F32.A", onset=days_ago(200)))
    ch.add(observation("44261-6", effective=days_ago(20), value=13))
    trazodone = medication_request("10737", authored=days_ago(60), text="trazodone 100 mg tablet")
    trazodone["reasonCode"] = [code_of("F32.A", ICD10)]
    ch.add(trazodone)
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch


@case
def p91() -> Chart:
    ch = Chart(
        "p91-v2-10-sertraline-valid-past-t0",
        "V2-10: recurrent depression (F33.1) and a sertraline order authored 250 d ago whose dispense "
        "validity "
        "runs 30 days past T0: older than medication.currentDays (180) but still valid, so it is current and "
        "the depression is treated (compare p67, the same order without a validity period).",
        gender="male",
    )
    in_scope(ch)
    ch.add(condition("F33.1", onset=days_ago(500)))
    ch.add(medication_request("312940", authored=days_ago(250), validity_end=days_ago(-30)))
    ch.full_conservative_care(300)
    ch.call("chart-open", "patient-view", [card("PATH-CC-COMPLETE")])
    return ch
