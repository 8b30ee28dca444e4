"""Revision-2 cases of the surgical order gates (RULES.md section 8): revision, hardware removal and
neuromodulation. Cases p75-p89; each fails on revision 1 and passes on revision 2.

The expected cards are written from RULES.md section 8 (revision 2), not from the plan definitions. What a
whole case cannot show (a criterion's status word, card text, suggestions) is tested on these charts in
``tests/plans/test_v2_surgery.py``.
"""

from __future__ import annotations

from support.synthetic import (
    LOCAL,
    UCUM,
    Chart,
    card,
    case,
    code_of,
    condition,
    days_ago,
    diagnostic_report,
    imaging_study,
    in_scope,
    instant_ago,
    observation,
    procedure,
)


def block(ch: Chart, relief: int, block_type: str, days: int = 40) -> None:
    """A diagnostic block (LOCAL diagnostic-block-relief, %) with its LOCAL block-type component."""
    component = {"code": code_of("block-type", LOCAL), "valueCodeableConcept": code_of(block_type, LOCAL)}
    ch.add(
        observation(
            "diagnostic-block-relief",
            system=LOCAL,
            effective=days_ago(days),
            value=relief,
            unit="%",
            component=[component],
        )
    )


def odi(ch: Chart, value: float, unit: str = "%", system: str = UCUM, days: int = 20) -> None:
    """An ODI (LOINC 97909-6) as a Quantity in the given unit."""
    resource = observation("97909-6", effective=days_ago(days), value=value, unit=unit)
    resource["valueQuantity"]["system"] = system
    ch.add(resource)


def revision_candidate(ch: Chart, fusion_days: int = 400, block_type: str = "facet") -> None:
    """Everything a revision needs, except the ODI (the caller adds it): a dated fusion, complete care from
    post-op day 100 (V2-12), a diagnostic block of 70 % of the given type and a confirmed pseudarthrosis."""
    in_scope(ch, fusion_days=fusion_days)
    ch.full_conservative_care(fusion_days - 100)
    block(ch, 70, block_type)
    ch.add(condition("M96.0", onset=days_ago(60)))


def stimulator_candidate(ch: Chart) -> None:
    """Everything a stimulator trial needs (as p30): radicular pain 500 d after fusion, complete care with an
    ESI, NRS 7, a psychological evaluation with clearance, no surgical target."""
    ch.fusion(500, "22633")
    ch.pain(nrs=7, nrs_days=8)
    ch.never_smoked()
    ch.add(condition("M54.16", onset=days_ago(420)))
    ch.full_conservative_care(380, radicular=True)
    ch.add(procedure("90791", performed=days_ago(60)))
    ch.add(
        observation(
            "neuromodulation-psych-clearance",
            system=LOCAL,
            effective=days_ago(55),
            value=code_of("cleared", LOCAL),
        )
    )


def crp(ch: Chart, mg_l: float, days: int) -> None:
    """A CRP (LOINC 1988-5) in mg/L."""
    ch.add(observation("1988-5", effective=instant_ago(days), value=mg_l, unit="mg/L"))


# --- V2-3: a fusion without a date ------------------------------------------------------------------------


@case
def p75() -> Chart:
    ch = Chart(
        "p75-v2-3-z98-only-revision",
        "V2-3: fused elsewhere, known only from Z98.1 (its recordedDate is not a fusion date), with recent "
        "post-fusion pain, a severe ODI, a facet block and a confirmed pseudarthrosis, and no conservative "
        "care. Revision 1 gave a revision order no card at all (it needed a fusion Procedure); revision 2 "
        "evaluates it: R1 is not documented (no fusion date) and R2 unmet (no countable care).",
    )
    ch.add(condition("Z98.1", recorded=days_ago(300)))
    ch.pain(nrs=7, onset=200)
    ch.never_smoked()
    odi(ch, 52)
    block(ch, 70, "facet")
    ch.add(condition("M96.0", onset=days_ago(60)))
    revision = ch.draft_order("22633")
    ch.call("chart-open", "patient-view", [card("PATH-NODATE")])
    ch.call("sign-revision", "order-sign", [card("REV-NOT-MET", "R1,R2(C1,C2,C4,C7)")], drafts=[revision])
    return ch


@case
def p76() -> Chart:
    ch = Chart(
        "p76-v2-3-undated-fusion-revision-scs",
        "V2-3: a completed lumbar fusion Procedure without a performed date, recent pain, severe ODI, an "
        "imaging-symptom correlation, a psychological evaluation and no structural target or conservative "
        "care. The revision draft is evaluated with R1 not documented (revision 1: no card), and the "
        "stimulator draft has X1 not documented and S1 unmet, including INT (no countable injection).",
        gender="male",
    )
    undated = procedure("22612", performed=None)
    del undated["performedDateTime"]
    ch.add(undated)
    ch.pain(nrs=7, onset=200)
    ch.never_smoked()
    odi(ch, 52)
    study = ch.add(imaging_study(started=days_ago(50)))
    ch.add(
        diagnostic_report(effective=days_ago(50), text="Post-operative change, no complication", study=study)
    )
    ch.add(
        observation(
            "imaging-symptom-correlation",
            system=LOCAL,
            effective=instant_ago(45),
            value=True,
            derived_from=[study],
        )
    )
    ch.add(procedure("90791", performed=days_ago(60)))
    revision, scs = ch.draft_order("22630"), ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("PATH-NODATE")])
    ch.call("sign-revision", "order-sign", [card("REV-NOT-MET", "R1,R2(C1,C2,C4,C7),R5")], drafts=[revision])
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "S1(C1,C2,C4,INT),X1")], drafts=[scs])
    return ch


# --- V2-4, V2-24: non-union under broken hardware; removal/reinsertion -------------------------------------


@case
def p77() -> Chart:
    ch = Chart(
        "p77-v2-4-broken-rod-nonunion",
        "V2-4: a confirmed rod breakage (T84.216A), a confirmed pseudarthrosis (M96.0) and an 85 % hardware "
        "block. Revision 1 read 'Hardware removal criteria met … simple hardware removal may be "
        "appropriate'; revision 2 fails H3 and gives HW-NONUNION: removal alone may destabilise, the "
        "revision fusion pathway applies (with the thin-cut CT advice of a broken rod).",
        gender="male",
    )
    in_scope(ch, fusion_days=500)
    ch.full_conservative_care(300)
    ch.add(condition("T84.216A", onset=days_ago(60)))
    ch.add(condition("M96.0", onset=days_ago(55)))
    ch.add(observation("hardware-block-relief", system=LOCAL, effective=days_ago(30), value=85, unit="%"))
    removal = ch.draft_order("22852")
    ch.call("select-removal", "order-select", [card("HW-NONUNION")], drafts=[removal], selections=[removal])
    ch.call("sign-removal", "order-sign", [card("HW-NONUNION")], drafts=[removal])
    return ch


@case
def p78() -> Chart:
    ch = Chart(
        "p78-v2-4-reinsertion-broken-rod",
        "V2-4, V2-24: a reinsertion (22849) over a confirmed rod breakage (T84.216A) with an imaging-symptom "
        "correlation; the only non-union records are a preliminary CT report and a refuted M96.0, which do "
        "not fail H3. HW-MET, whose summary says removal/reinsertion and names the breakage, and whose "
        "detail carries the thin-cut CT advice and suggestion (V2-4).",
    )
    in_scope(ch, fusion_days=500)
    ch.full_conservative_care(300)
    ch.add(condition("T84.216A", onset=days_ago(40)))
    ch.add(condition("M96.0", verification="refuted", onset=days_ago(40)))
    ch.add(diagnostic_report(effective=days_ago(35), conclusion=["M96.0"], status="preliminary"))
    study = ch.add(imaging_study(started=days_ago(35)))
    ch.add(
        observation(
            "imaging-symptom-correlation",
            system=LOCAL,
            effective=instant_ago(30),
            value=True,
            derived_from=[study],
        )
    )
    reinsertion = ch.draft_order("22849")
    ch.call("sign-reinsertion", "order-sign", [card("HW-MET")], drafts=[reinsertion])
    return ch


# --- V2-5: implant infection ------------------------------------------------------------------------------


@case
def p79() -> Chart:
    ch = Chart(
        "p79-v2-5-infected-hardware",
        "V2-5: an active infection of the spinal fixation device (T84.63XA) recorded 40 d ago (outside the "
        "14-day red-flag window, so no RF-3), no documented hardware failure. Revision 1 said 'removal not "
        "supported' and offered to delete the order; revision 2 gives HW-INFECTION only: removal or "
        "debridement follows infection management, with no remove-draft suggestion.",
    )
    in_scope(ch, fusion_days=400)
    ch.full_conservative_care(300)
    ch.add(condition("T84.63XA", onset=days_ago(40)))
    removal = ch.draft_order("22850")
    ch.call("sign-removal", "order-sign", [card("HW-INFECTION")], drafts=[removal])
    return ch


# --- V2-6: a hardware problem inside the healing window ---------------------------------------------------


@case
def p80() -> Chart:
    ch = Chart(
        "p80-v2-6-screw-displacement-day-18",
        "V2-6: fusion 20 d ago and a confirmed screw displacement (T84.226A) on post-operative day 18. "
        "Revision 1 reassured: 'within expected healing window'; revision 2 shows HW-EARLY (review with the "
        "operating surgeon) and no PATH card. A removal draft is evaluated as usual (not gated on time, D5): "
        "documented failure without a confirmed pain source, HW-FAIL-ONLY.",
        gender="male",
    )
    ch.fusion(20, "22633")
    ch.add(condition("M54.50", onset=days_ago(15)))
    ch.nrs(7, 2)
    ch.never_smoked()
    ch.add(condition("T84.226A", onset=days_ago(2)))
    removal = ch.draft_order("22852")
    ch.call("chart-open", "patient-view", [card("HW-EARLY")])
    ch.call("sign-removal", "order-sign", [card("HW-FAIL-ONLY")], drafts=[removal])
    return ch


# --- V2-8: X6 and the CRP -------------------------------------------------------------------------------


@case
def p81() -> Chart:
    ch = Chart(
        "p81-v2-8-crp-raised-x6",
        "V2-8: a stimulator candidate meeting every other criterion with a CRP of 45 mg/L three days ago, "
        "500 d after the last spine surgery. Revision 1 showed LAB-CRP and 'X6 No active infection: met' "
        "side by side; revision 2 fails X6 when LAB-CRP's condition holds.",
    )
    stimulator_candidate(ch)
    crp(ch, 45, 3)
    scs = ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("LAB-CRP"), card("PATH-CC-COMPLETE")])
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "X6")], drafts=[scs])
    return ch


@case
def p82() -> Chart:
    ch = Chart(
        "p82-v2-8-crp-too-early-x6",
        "V2-8: the same stimulator candidate after a laminotomy (63030) 20 d ago, with a CRP of 30 mg/L "
        "drawn on post-operative day 17: above the threshold but earlier than 6 weeks, so not interpretable "
        "(no LAB-CRP) and X6 is not documented rather than met.",
        gender="male",
    )
    stimulator_candidate(ch)
    ch.add(procedure("63030", performed=days_ago(20)))
    crp(ch, 30, 3)
    scs = ch.draft_order("63650")
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "X6")], drafts=[scs])
    return ch


# --- V2-15: the block's target ----------------------------------------------------------------------------


@case
def p83() -> Chart:
    ch = Chart(
        "p83-v2-15-si-block-revision",
        "V2-15: a revision candidate whose only localising test is a sacroiliac-joint block with 70 % "
        "relief (no imaging correlation). Revision 1 counted it for R4 and read 'Revision criteria met'; "
        "revision 2 never lets an SI-joint block satisfy R4 (the detail says the SI joint may be the pain "
        "source) and suggests a diagnostic block, not a CT (V2-28).",
    )
    revision_candidate(ch, block_type="sacroiliac")
    odi(ch, 52)
    revision = ch.draft_order("22612")
    ch.call("sign-revision", "order-sign", [card("REV-NOT-MET", "R4")], drafts=[revision])
    return ch


# --- V2-17: ODI units -----------------------------------------------------------------------------------


@case
def p84() -> Chart:
    ch = Chart(
        "p84-v2-17-odi-fraction",
        "V2-17, V2-22: a revision candidate whose ODI arrives as the fraction 0.45 with unit '1' (45 %). "
        "Revision 1 read 0.45 % (R3 unmet) and repeated REV-ODDS at both order hooks; revision 2 converts it "
        "(R3 met) and gives one REV-MET card per hook, the repeat-surgery figures in its detail.",
        gender="male",
    )
    revision_candidate(ch)
    odi(ch, 0.45, unit="1")
    revision = ch.draft_order("22612")
    ch.call("select-revision", "order-select", [card("REV-MET")], drafts=[revision], selections=[revision])
    ch.call("sign-revision", "order-sign", [card("REV-MET")], drafts=[revision])
    return ch


@case
def p85() -> Chart:
    ch = Chart(
        "p85-v2-17-odi-22-not-met",
        "V2-17: a revision candidate with an ODI of 22 % and no work status recorded. Revision 1 read R3 "
        "'not documented' (the absent work status made the OR unknown); revision 2 reads it not met "
        "(ODI 22 %, needs 41 %).",
    )
    revision_candidate(ch)
    odi(ch, 22)
    revision = ch.draft_order("22612")
    ch.call("sign-revision", "order-sign", [card("REV-NOT-MET", "R3")], drafts=[revision])
    return ch


@case
def p86() -> Chart:
    ch = Chart(
        "p86-v2-17-odi-raw-score",
        "V2-17: a revision candidate whose ODI is the raw 0-50 sum 24 with LOCAL unit {raw-score} (48 %). "
        "Revision 1 could not convert it (R3 not documented); revision 2 doubles it: REV-MET.",
        gender="male",
    )
    revision_candidate(ch)
    odi(ch, 24, unit="{raw-score}", system=LOCAL)
    revision = ch.draft_order("22630")
    ch.call("sign-revision", "order-sign", [card("REV-MET")], drafts=[revision])
    return ch


# --- V2-21: the permanent stimulator --------------------------------------------------------------------


def trial(ch: Chart, days: int, relief: int | None, relief_days: int) -> None:
    """A completed percutaneous stimulator trial (63650) and the pain relief recorded for it."""
    ch.add(procedure("63650", performed=days_ago(days)))
    if relief is not None:
        ch.add(
            observation(
                "scs-trial-relief", system=LOCAL, effective=days_ago(relief_days), value=relief, unit="%"
            )
        )


@case
def p87() -> Chart:
    ch = Chart(
        "p87-v2-21-scs-permanent-met",
        "V2-21: a completed stimulator trial 30 d ago with 70 % relief. A pulse generator (63685) draft gets "
        "SCS-PERM-MET (revision 1 had no permanent-implant rule: no card). Signed together with a 63650 lead "
        "draft, the lead is the permanent one (a completed trial exists and 63685 is co-ordered, RULES.md "
        "2.5), so it gets no trial card.",
    )
    stimulator_candidate(ch)
    trial(ch, 30, 70, 22)
    generator, lead = ch.draft_order("63685"), ch.draft_order("63650")
    ch.call(
        "select-generator", "order-select", [card("SCS-PERM-MET")], drafts=[generator], selections=[generator]
    )
    ch.call("sign-generator-and-lead", "order-sign", [card("SCS-PERM-MET")], drafts=[generator, lead])
    return ch


@case
def p88() -> Chart:
    ch = Chart(
        "p88-v2-21-scs-permanent-not-met",
        "V2-21: the stimulator trial was 120 d ago (outside 90 d) and its recorded relief 40 % (under 50 %): "
        "a paddle electrode (63655) draft gets SCS-PERM-NOT-MET with P1 and P2 (revision 1: no card).",
        gender="male",
    )
    stimulator_candidate(ch)
    trial(ch, 120, 40, 60)
    paddle = ch.draft_order("63655")
    ch.call("sign-paddle", "order-sign", [card("SCS-PERM-NOT-MET", "P1,P2")], drafts=[paddle])
    return ch


# --- V2-11: no elective surgical cards in cancer or palliative care --------------------------------------


@case
def p89() -> Chart:
    ch = Chart(
        "p89-v2-11-metastatic-surgical-drafts",
        "V2-11: an in-scope fused patient with active vertebral metastases (C79.51) and revision, hardware "
        "removal and stimulator drafts. Revision 1 evaluated all three (REV-NOT-MET, HW-NOT-SUPPORTED, "
        "SCS-NOT-MET); revision 2 gives no elective card, and there is no red flag.",
    )
    in_scope(ch, fusion_days=400)
    ch.add(condition("C79.51", onset=days_ago(90), display="Secondary malignant neoplasm of bone"))
    drafts = [ch.draft_order("22612"), ch.draft_order("22852"), ch.draft_order("63650")]
    ch.call("chart-open", "patient-view", [])
    ch.call("sign-all", "order-sign", [], drafts=drafts)
    return ch
