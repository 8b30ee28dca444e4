"""`cds-service rules show` and `cds-service explain`: reading a rule, and why a call gives its cards, on the
bundled plan definitions and the synthetic patients."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from cds_service import cli
from cds_service.cli.explain import readable
from cds_service.hooks import build_services
from cds_service.plans.loader import load_ruleset
from cds_service.record import make_entry

from support.fhir_server import FhirState
from support.hooks import HOOKS_DIR, ROOT, TOKEN, serve_prefetch_from, with_server
from support.requests import hook_request

NOW = "2026-11-01T12:00:00+00:00"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = cli.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def case_request(tmp_path: Path, case_id: str, call_name: str) -> Path:
    """A synthetic patient's call as a request file, its prefetch answered from the patient's record."""
    case = orjson.loads((ROOT / "fixtures" / "patients" / f"{case_id}.json").read_bytes())
    call = next(call for call in case["calls"] if call["name"] == call_name)
    services = build_services(load_ruleset(ROOT / "plandefinitions"))
    templates = next(s.prefetch for s in services.values() if s.hook == call["hook"])
    path = tmp_path / f"{case_id}-{call_name}.json"
    path.write_bytes(orjson.dumps(hook_request(case, call, templates)))
    return path


def criterion_block(text: str, code: str) -> str:
    """The lines explain prints for one criterion: from its code up to the next criterion or plan."""
    match = re.search(rf"^    {re.escape(code)}  .*?(?=^    \S|^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"{code} not in:\n{text}"
    return match.group(0)


# -- rules show ----------------------------------------------------------------------------------------


def test_show_fact_prints_its_rule_source_and_what_it_uses(capsys):
    status, out, _ = run(capsys, "rules", "show", "c1Met")
    assert status == 0
    assert out.startswith("Fact c1Met\n    Formal physical therapy for long enough\n")
    assert "Defined in libraries/conservative-care.json: " in out
    assert '"span_days"' in out  # the JSON-Logic, indented
    assert "    ptSessions: Physical therapy counted after the fusion\n" in out
    assert "    ptSpanDays: Days spanned by the counted physical therapy\n" in out
    assert "    pt.minSessions = 6: Physical therapy sessions required [DESIGN].\n" in out
    (builds_on,) = [line for line in out.splitlines() if line.startswith("Builds on")]
    assert {
        "ptSessions",
        "ptSpanDays",
        "indexFusionDate",
        "fusionProcedures",
        "conservativeCountFrom",
    } <= set(builds_on.split(": ", 1)[1].split(", "))


def test_show_plan_prints_every_criterion_and_action(capsys):
    status, out, _ = run(capsys, "rules", "show", "revision")
    assert status == 0
    assert out.startswith("Plan revision: Revision fusion or exploration after lumbar fusion\n")
    for code in ("R1", "R2", "R3", "R4", "R5"):
        assert re.search(rf"^    {code}  ", out, re.MULTILINE), code
    assert "        defined in 30-revision.json: " in out
    assert (
        "    REV-NOT-MET  (order-select, order-sign; warning; once per draft order in RevisionOrders)\n"
        in out
    )
    assert '"param": "revision.minDaysSinceFusion"' in out
    assert "    severeImpairment: Significant functional impairment\n" in out
    # a fact named only in a card's title template is used too
    assert "    revisionSuccessPct: " in out


def test_show_finds_a_plan_by_its_name_and_prints_required_when(capsys):
    status, out, _ = run(capsys, "rules", "show", "ConservativeCare")
    assert status == 0, out
    assert out.startswith("Plan conservative-care: ")
    assert "        required only when:\n" in out


@pytest.mark.parametrize(
    ("name", "suggestion"), [("revison", "revision"), ("daysSinceFusoin", "daysSinceFusion")]
)
def test_show_of_an_unknown_name_exits_2_with_close_matches(capsys, name, suggestion):
    status, out, err = run(capsys, "rules", "show", name)
    assert status == 2
    assert out == ""
    assert f"error: no fact or plan definition is named '{name}'; did you mean: {suggestion}" in err


# -- explain -------------------------------------------------------------------------------------------


def test_explain_tells_met_from_not_documented_with_the_missing_facts(capsys):
    # p03: 400 days after the fusion, no ODI and no work status documented
    status, out, _ = run(capsys, "explain", str(HOOKS_DIR / "order-sign.json"), "--now", NOW)
    assert status == 0
    assert "order-sign for Patient/p03-cc-incomplete-radicular, T0 2026-11-01\n" in out
    assert "    for the draft order ServiceRequest 2026-11-01 (Arthrodesis" in out

    r1 = criterion_block(out, "R1")
    assert "        met (required)\n" in r1
    assert "            fact datedFusion = Procedure 2025-09-27 (Arthrodesis" in r1
    assert "            parameter revision.minDaysSinceFusion = 180  (" in r1
    assert "        evidence: Procedure/p03-cc-incomplete-radicular-procedure-1\n" in r1

    r3 = criterion_block(out, "R3")
    assert "        not documented (required)\n" in r3
    assert "fact severeImpairment = not documented" in r3
    assert (
        "        missing: Recent Oswestry disability score (recentOdi); "
        "Recent work status (recentWorkStatus)\n"
    ) in r3

    assert "    cards shown: REV-NOT-MET\n" in out
    assert "    not shown (their conditions were not all true): REV-MET\n" in out
    assert "Plan hardware-removal: " in out and "no draft order in this call is one it looks at" in out
    assert "    warning  REV-NOT-MET: Revision not supported yet: conservative care incomplete; " in out


def test_explain_says_when_a_criterion_is_not_required(capsys):
    status, out, _ = run(capsys, "explain", str(HOOKS_DIR / "patient-view.json"), "--now", NOW)
    assert status == 0
    assert "        not met (not required here)\n" in criterion_block(out, "C3")
    assert "        met (required)\n" in criterion_block(out, "C1")
    assert "    cards shown: PATH-CC-INCOMPLETE\n" in out


def test_explain_json_gives_each_criterion_state_inputs_and_cards(capsys, tmp_path: Path):
    request = case_request(tmp_path, "p05-rev-met-pseudarthrosis", "sign-revision")
    status, out, _ = run(capsys, "explain", str(request), "--now", NOW, "--json")
    assert status == 0
    explanation = json.loads(out)
    (revision,) = [plan for plan in explanation["plans"] if plan["id"] == "revision"]
    (focus,) = revision["foci"]
    assert focus["draft"].startswith("ServiceRequest/p05-rev-met-pseudarthrosis")
    states = {criterion["code"]: criterion["state"] for criterion in focus["criteria"]}
    assert states == {"R1": "met", "R2": "met", "R3": "met", "R4": "met", "R5": "met"}
    r5 = next(criterion for criterion in focus["criteria"] if criterion["code"] == "R5")
    assert r5["inputs"][0]["name"] == "structuralPathology"
    assert "REV-MET" in revision["shown"]
    assert "REV-MET" in [card["rule"] for card in explanation["cards"]]


def test_explain_fetches_missing_prefetch_like_evaluate_and_never_prints_the_token(
    capsys, monkeypatch, tmp_path: Path, fhir: tuple[str, FhirState]
):
    base, state = fhir
    body: dict[str, Any] = json.loads((HOOKS_DIR / "order-sign.json").read_text())
    serve_prefetch_from(state, body)
    with_server(body, base)
    body["prefetch"] = {}
    path = tmp_path / "no-prefetch.json"
    path.write_text(json.dumps(body))
    monkeypatch.setenv("CDS_FHIR_ALLOWED_SERVERS", base)
    monkeypatch.setenv("CDS_FHIR_ALLOW_HTTP", "true")

    status, fetched, err = run(capsys, "explain", str(path), "--now", NOW)
    assert status == 0, err
    _, given, _ = run(capsys, "explain", str(HOOKS_DIR / "order-sign.json"), "--now", NOW)
    assert fetched == given
    assert TOKEN not in fetched + err
    assert any(call.authorization == f"Bearer {TOKEN}" for call in state.requests)


def test_explain_refuses_a_bad_request_as_evaluate_does(capsys, tmp_path: Path):
    request = json.loads((HOOKS_DIR / "patient-view.json").read_text())
    del request["context"]["patientId"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(request))
    status, out, err = run(capsys, "explain", str(path))
    assert status == 2
    assert json.loads(out)["issue"][0]["expression"] == ["context.patientId"]
    assert "error: Field required" in err
    assert "Traceback" not in err

    status, _, err = run(capsys, "explain", str(tmp_path / "missing.json"))
    assert status == 2
    assert "error: cannot read " in err


def test_explain_reports_a_bad_now_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["explain", str(HOOKS_DIR / "order-sign.json"), "--now", "next tuesday"])
    assert exit_.value.code == 2
    assert "expected an ISO date or dateTime such as 2026-11-01" in capsys.readouterr().err


def test_values_read_as_a_clinician_reads_them():
    odi = make_entry(
        {
            "resourceType": "Observation",
            "id": "odi-1",
            "status": "final",
            "code": {"text": "Oswestry Disability Index"},
            "effectiveDateTime": "2026-10-01T09:30:00Z",
        }
    )
    undated = make_entry({"resourceType": "Procedure", "id": "pt-1", "status": "completed"})
    assert readable(odi) == "Observation 2026-10-01 (Oswestry Disability Index)"
    assert readable(undated) == "Procedure undated"
    assert readable([odi, undated, odi, odi]) == (
        "4 records: Observation 2026-10-01 (Oswestry Disability Index); Procedure undated; "
        "Observation 2026-10-01 (Oswestry Disability Index); and 1 more"
    )
    assert readable(["2026-01-05"]) == "1 item: 2026-01-05"
    assert [readable(v) for v in (None, True, False, [], "", 41.50)] == [
        "not documented",
        "yes",
        "no",
        "none",
        "none",
        "41.5",
    ]
