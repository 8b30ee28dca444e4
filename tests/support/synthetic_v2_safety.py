"""Revision-2 cases of the safety area (RULES.md section 8.1): who is evaluated, red flags, scope, lumbar
fusion and the elective-care exclusions. Cases p50-p59 and p92-p93; each fails on revision 1 and passes on
revision 2.

The expected cards are written from RULES.md section 8 (revision 2), not from the plan definitions. The
edges that a whole case cannot isolate (site parameters, card text, suggestions) are tested in
``tests/plans/test_v2_safety.py`` on variants of these charts.
"""

from __future__ import annotations

from support.synthetic import (
    LOCAL,
    SNOMED,
    Chart,
    Json,
    card,
    case,
    code_of,
    condition,
    days_ago,
    in_scope,
    instant_ago,
    local_flag,
    medication_request,
    observation,
    procedure,
)


def body_site(code: str, display: str) -> list[dict[str, object]]:
    """A Procedure.bodySite with one SNOMED CT body structure."""
    return [{"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}]


@case
def p50() -> Chart:
    ch = Chart(
        "p50-v2-1-cauda-equina-low-pain",
        "V2-1: lumbar fusion 400 d ago, a pain score of 2/10 five days ago (so out of scope for the pain "
        "pathway) and a coded cauda equina (G83.4) 2 d ago. Revision 1 evaluated red flags only for in-scope "
        "patients and gave no card at all; revision 2 shows RF-1. At order-sign the revision draft gets RF-1 "
        "only: the elective criteria are not evaluated and the RF card's detail says so (V2-22).",
        gender="male",
    )
    ch.fusion(400)
    ch.nrs(2, 5)
    ch.never_smoked()
    ch.add(condition("G83.4", onset=days_ago(2)))
    revision = ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [card("RF-1")])
    ch.call("sign-revision", "order-sign", [card("RF-1")], drafts=[revision])
    return ch


@case
def p51() -> Chart:
    ch = Chart(
        "p51-v2-1-cervical-fusion-airway",
        "V2-1: a cervical fusion (22551) 200 d ago and no lumbar fusion or back pain; neck stiffness and new "
        "dysphagia (R13.10) 2 d ago. RF-6 needs only a cervical fusion; revision 1 required the lumbar "
        "in-scope test and showed nothing. No pathway card: a cervical fusion is not a lumbar one (V2-9).",
    )
    ch.add(procedure("22551", performed=days_ago(200)))
    ch.never_smoked()
    ch.add(local_flag("rf-neck-stiffness", True, 2))
    ch.add(condition("R13.10", onset=days_ago(2)))
    ch.call("chart-open", "patient-view", [card("RF-6")])
    return ch


@case
def p52() -> Chart:
    ch = Chart(
        "p52-v2-9-cervical-22554-22585",
        "V2-9: an anterior cervical fusion coded 22554 with the add-on 22585 on the same day 300 d ago, "
        "arthrodesis status Z98.1 and low back pain since: 22585 is an add-on, a lumbar fusion only with a "
        "lumbar primary code on the same date, and Z98.1 is explained by the recorded cervical fusion (the "
        "reading chosen). Revision 1 counted 22585 as a lumbar fusion and gave PATH-CC-INCOMPLETE and, on a "
        "22612 draft, REV-NOT-MET; revision 2 gives no card (the draft is a primary lumbar fusion).",
        gender="male",
    )
    ch.add(procedure("22554", performed=days_ago(300)))
    ch.add(
        procedure(
            "22585",
            performed=days_ago(300),
            display="Arthrodesis, anterior interbody, each additional interspace",
        )
    )
    ch.add(condition("Z98.1", recorded=days_ago(250)))
    ch.add(condition("M54.50", onset=days_ago(200)))
    ch.nrs(6, 10)
    ch.never_smoked()
    primary = ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [])
    ch.call("sign-lumbar-fusion", "order-sign", [], drafts=[primary])
    return ch


@case
def p53() -> Chart:
    ch = Chart(
        "p53-v2-2-preoperative-pain-codes",
        "V2-2: lumbar fusion 200 d ago; low back pain (M54.50) and lumbar radiculopathy (M54.16) are active "
        "on the problem list from before the operation, other chronic pain (G89.29) and chronic pain "
        "syndrome (G89.4) were coded after it, and the only recent pain score is 1/10 (45 d ago). None of "
        "them is post-fusion pain: out of scope, no card. Revision 1 read 'missing: C1,C2,C3,C4,C5,C6p,C7'.",
    )
    ch.fusion(200)
    ch.add(condition("M54.50", onset=days_ago(420)))
    ch.add(condition("M54.16", onset=days_ago(380)))
    ch.add(condition("G89.29", onset=days_ago(120)))
    ch.add(condition("G89.4", onset=days_ago(100)))
    ch.nrs(1, 45)
    ch.never_smoked()
    ch.call("chart-open", "patient-view", [])
    return ch


@case
def p54() -> Chart:
    ch = Chart(
        "p54-v2-2-newer-low-pain-score",
        "V2-2: lumbar fusion 400 d ago and postlaminectomy syndrome (M96.1) coded 300 d ago, after the "
        "fusion; the latest pain score, 2/10 five days ago, is newer than that diagnosis and under "
        "painPresent.nrs: out of scope, no card. Revision 1 kept the patient in scope on the diagnosis "
        "alone.",
        gender="male",
    )
    ch.fusion(400)
    ch.add(condition("M96.1", onset=days_ago(300)))
    ch.nrs(7, 60)
    ch.nrs(2, 5)
    ch.never_smoked()
    ch.call("chart-open", "patient-view", [])
    return ch


@case
def p55() -> Chart:
    ch = Chart(
        "p55-v2-9-generic-fusion-body-site",
        "V2-9: the index fusion is the generic SNOMED CT spinal fusion (55705006) at the lumbar spine 300 d "
        "ago; a later 55705006 at the cervical spine (30 d ago) and an orphan add-on 22585 (60 d ago, no "
        "lumbar primary that day) are not lumbar fusions. Post-fusion pain, no care documented: "
        "PATH-CC-INCOMPLETE. Revision 1 took the 30-day-old procedure as the index fusion (inside the "
        "healing window, no card).",
    )
    fusion = procedure("55705006", system=SNOMED, performed=days_ago(300), display="Spinal fusion")
    fusion["bodySite"] = body_site("122496007", "Lumbar spine structure")
    ch.add(fusion)
    cervical = procedure("55705006", system=SNOMED, performed=days_ago(30), display="Spinal fusion")
    cervical["bodySite"] = body_site("122494005", "Cervical spine structure")
    ch.add(cervical)
    ch.add(
        procedure(
            "22585",
            performed=days_ago(60),
            display="Arthrodesis, anterior interbody, each additional interspace",
        )
    )
    ch.add(condition("M96.1", onset=days_ago(250)))
    ch.nrs(6, 10)
    ch.never_smoked()
    ch.call("chart-open", "patient-view", [card("PATH-CC-INCOMPLETE", "C1,C2,C4,C7")])
    return ch


@case
def p56() -> Chart:
    ch = Chart(
        "p56-v2-7-postoperative-retention",
        "V2-7: lumbar fusion 4 d ago and urinary retention (R33.9) coded today, post-operative day 4, with "
        "pain 7/10: isolated retention within redFlag.postOpRetentionDays (7 d) of spine surgery does not "
        "raise the critical cauda-equina card, which revision 1 did. Inside the healing window PATH-EARLY is "
        "off by default (V2-22): no card.",
        gender="male",
    )
    ch.fusion(4)
    ch.add(condition("R33.9", onset=days_ago(0)))
    ch.nrs(7, 1)
    ch.never_smoked()
    ch.call("chart-open", "patient-view", [])
    return ch


@case
def p57() -> Chart:
    ch = Chart(
        "p57-v2-8-raised-crp-scs",
        "V2-8: complete care, psychological clearance and a CRP of 45 mg/L three days ago, 400 d after the "
        "fusion: LAB-CRP on the chart (with PATH-CC-COMPLETE: a raised CRP is not a red flag), and on a "
        "stimulator trial order X6 (no active infection) is not met. Revision 1 read 'X6 No active "
        "infection: met' and gave SCS-MET.",
    )
    in_scope(ch, nrs=7)
    ch.add(condition("M54.16", onset=days_ago(320)))
    ch.full_conservative_care(300, radicular=True)
    ch.add(procedure("90791", performed=days_ago(100)))
    ch.add(
        observation(
            "neuromodulation-psych-clearance",
            system=LOCAL,
            effective=days_ago(95),
            value=code_of("cleared", LOCAL),
        )
    )
    ch.add(observation("1988-5", effective=instant_ago(3), value=45, unit="mg/L"))
    scs = ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("LAB-CRP"), card("PATH-CC-COMPLETE")])
    ch.call("sign-scs", "order-sign", [card("SCS-NOT-MET", "X6")], drafts=[scs])
    return ch


@case
def p58() -> Chart:
    ch = Chart(
        "p58-v2-11-metastatic-cancer",
        "V2-11: in-scope patient (fusion 400 d ago, M96.1, pain 6/10) with an active secondary malignant "
        "neoplasm of bone (C79.51), a current smoker, on oxycodone and gabapentin: no elective card (no "
        "PATH, no RISK-SMOKE; no REV card on a revision draft) while MED-SEDATING still applies. Revision "
        "1 gave PATH-CC-INCOMPLETE, RISK-SMOKE and the sedation card, and REV-NOT-MET with REV-ODDS.",
        gender="male",
    )
    ch.fusion(400)
    ch.pain(onset=330)
    ch.smoking("449868002", 20)
    ch.add(condition("C79.51", onset=days_ago(100), display="Secondary malignant neoplasm of bone"))
    ch.add(medication_request("1049621", authored=days_ago(60)))
    ch.add(medication_request("310434", authored=days_ago(120)))
    revision = ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [card("MED-SEDATING")])
    ch.call("sign-revision", "order-sign", [], drafts=[revision])
    return ch


@case
def p59() -> Chart:
    ch = Chart(
        "p59-v2-11-palliative-red-flag",
        "V2-11: in-scope patient receiving palliative care (Z51.5) with untreated depression (F32.A, PHQ-9 "
        "15) and progressive leg weakness reported yesterday: the red flag still applies (RF-2), the "
        "elective cards do not (no RISK-DEP, no SCS card on a stimulator order). Revision 1 added RISK-DEP "
        "and an SCS card.",
    )
    in_scope(ch)
    ch.add(condition("F32.A", onset=days_ago(200)))
    ch.add(observation("44261-6", effective=days_ago(20), value=15))
    ch.add(condition("Z51.5", onset=days_ago(30), display="Encounter for palliative care"))
    ch.add(local_flag("rf-progressive-weakness", True, 1))
    scs = ch.draft_order("63650")
    ch.call("chart-open", "patient-view", [card("RF-2")])
    ch.call("sign-scs", "order-sign", [card("RF-2")], drafts=[scs])
    return ch


def hospice_stay(status: str, days: int) -> Json:
    """A hospice Encounter that started n days before T0 (ongoing while in progress)."""
    return {
        "resourceType": "Encounter",
        "status": status,
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "HH",
            "display": "home health",
        },
        "type": [code_of("385763009", SNOMED, "Hospice care")],
        "period": {"start": days_ago(days), **({"end": days_ago(days - 20)} if status == "finished" else {})},
    }


@case
def p92() -> Chart:
    ch = Chart(
        "p92-v2-11-hospice-encounter",
        "V2-11: in-scope patient with no conservative care documented, a current smoker, in an ongoing "
        "hospice stay (Encounter in progress, type SNOMED 385763009 Hospice care) and no palliative-care "
        "diagnosis: no elective cards at chart open (no PATH-CC-INCOMPLETE, no RISK-SMOKE) and none on a "
        "revision order. Revision 1 showed both patient-view cards and a revision card.",
    )
    in_scope(ch)
    ch.smoking("449868002", 20)
    ch.add(hospice_stay("in-progress", 15))
    revision = ch.draft_order("22612")
    ch.call("chart-open", "patient-view", [])
    ch.call("sign-revision", "order-sign", [], drafts=[revision])
    return ch


@case
def p93() -> Chart:
    ch = Chart(
        "p93-v2-11-hospice-stay-ended",
        "V2-11: the same patient as p92, but the hospice stay ended (Encounter finished 45-25 days ago): "
        "an ended stay is not ongoing palliative care, so the elective cards apply (conservative care "
        "incomplete, current smoker).",
    )
    in_scope(ch)
    ch.smoking("449868002", 20)
    ch.add(hospice_stay("finished", 45))
    ch.call(
        "chart-open",
        "patient-view",
        [card("PATH-CC-INCOMPLETE", "C1,C2,C4,C6s,C7"), card("RISK-SMOKE")],
    )
    return ch
