"""What a rule author meets: every problem reported with file and path, site parameters, refusal to start on
an invalid set, and hot reload that keeps the previous rules when an edit is invalid."""

import json
import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from cds_service.cli.cases import id_list
from cds_service.plans.canonical import LANGUAGE
from cds_service.plans.errors import RuleSetError
from cds_service.plans.loader import load_ruleset
from cds_service.web.app import create_app

from support.hooks import ROOT, SERVICES, hook_request, rule_ids
from support.waiting import wait_for


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    folder = tmp_path / "plandefinitions"
    shutil.copytree(ROOT / "plandefinitions", folder)
    return folder


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    resource = json.loads(path.read_text())
    change(resource)
    path.write_text(json.dumps(resource, indent=2))


def problems(folder: Path, parameters: Path | None = None) -> list[str]:
    with pytest.raises(RuleSetError) as raised:
        load_ruleset(folder, parameters)
    return [str(problem) for problem in raised.value.problems]


def set_fact(name: str, rule: Any) -> Callable[[dict[str, Any]], None]:
    def change(resource: dict[str, Any]) -> None:
        for extension in resource["extension"]:
            if extension.get("valueExpression", {}).get("name") == name:
                extension["valueExpression"]["expression"] = json.dumps(rule)

    return change


HW = "40-hardware-removal.json"
RF = "10-red-flags.json"
HW_EXTENSIONS = len(json.loads((ROOT / "plandefinitions" / HW).read_text())["extension"])
COMMON_EXTENSIONS = len(
    json.loads((ROOT / "plandefinitions" / "libraries" / "common.json").read_text())["extension"]
)
HW_CRITERION = next(  # the position of the plan's first criterion among its extensions
    index
    for index, extension in enumerate(json.loads((ROOT / "plandefinitions" / HW).read_text())["extension"])
    if extension["url"].endswith("/criterion")
)


def fact_at(file: str, name: str) -> str:
    """Where a bundled library defines a fact: the location problems name."""
    extensions = json.loads((ROOT / "plandefinitions" / file).read_text())["extension"]
    index = next(i for i, e in enumerate(extensions) if e.get("valueExpression", {}).get("name") == name)
    return f"extension[{index}].valueExpression.expression"


FUSION = fact_at("libraries/common.json", "fusionProcedures")

BROKEN = {
    "unknown operator": (
        "libraries/common.json",
        set_fact("fusionProcedures", {"selekt": ["Condition"]}),
        f"common.json: {FUSION}: unknown operator 'selekt' (at $.selekt in the rule)",
    ),
    "unknown value set": (
        "libraries/common.json",
        set_fact("fusionProcedures", {"select": ["Procedure", "LumbarFuson"]}),
        f"{FUSION}: unknown value set 'LumbarFuson' (at $.select in the rule)",
    ),
    "unknown status profile": (
        "libraries/common.json",
        set_fact("fusionProcedures", {"select": ["Procedure", "LumbarFusion", "finished"]}),
        "unknown status profile 'finished' for Procedure",
    ),
    "unknown parameter": (
        "libraries/common.json",
        set_fact("fusionProcedures", {"param": "redFlag.lookback"}),
        "valueExpression.expression: unknown parameter 'redFlag.lookback' (at $.param in the rule)",
    ),
    "fact cycle": (
        "libraries/risk-and-medicines.json",
        set_fact("opioids", {"fact": "opioids"}),
        "facts refer to each other in a cycle: opioids -> opioids",
    ),
    "expression not JSON": (
        "libraries/common.json",
        lambda r: r["extension"][0]["valueExpression"].update(expression="{not json"),
        "extension[0].valueExpression.expression: not JSON",
    ),
    "wrong language": (
        "libraries/common.json",
        lambda r: r["extension"][0]["valueExpression"].update(language="text/cql"),
        f"extension[0].valueExpression.language: language must be '{LANGUAGE}'",
    ),
    "parameter without default": (
        "libraries/common.json",
        lambda r: r["parameter"][0].pop("extension"),
        "parameter[0]: parameter 'pathway.earlyWindowDays' needs a cqf-defaultValue",
    ),
    "unknown hook": (
        RF,
        lambda r: r["action"][0]["trigger"].append({"type": "named-event", "name": "patient-veiw"}),
        f"{RF}: action[0].trigger: unknown hook 'patient-veiw'",
    ),
    "unknown placeholder": (
        RF,
        lambda r: r["action"][0].update(description="Within {{redFlag.lookbackDay}} days"),
        f"{RF}: action[0].description: unknown placeholder '{{{{redFlag.lookbackDay}}}}'",
    ),
    "bad priority": (RF, lambda r: r["action"][0].update(priority="high"), f"{RF}: action[0].priority"),
    "missing rule id": (RF, lambda r: r["action"][0].pop("code"), f"{RF}: action[0].code"),
    "unknown criterion": (
        HW,
        lambda r: r["action"][0]["condition"][0]["expression"].update(expression='{"criterion": "H9"}'),
        f"{HW}: action[0].condition[0].expression.expression: unknown criterion 'H9'",
    ),
    "library not loaded": (
        HW,
        lambda r: r.update(library=["http://example.org/Library/other"]),
        f"{HW}: library[0]: no Library with url 'http://example.org/Library/other' is loaded",
    ),
    "override reason without display": (
        "libraries/common.json",
        lambda r: r["extension"].append(
            {
                "url": "http://postfusion-cds.org/fhir/StructureDefinition/override-reason",
                "valueCoding": {"system": "s", "code": "c"},
            }
        ),
        f"libraries/common.json: extension[{COMMON_EXTENSIONS}]: an override reason needs system, code and "
        "display",
    ),
    "override reason on one card": (
        HW,
        lambda r: (
            r["action"][0]
            .setdefault("extension", [])
            .append(
                {
                    "url": "http://postfusion-cds.org/fhir/StructureDefinition/override-reason",
                    "valueCoding": {"system": "s", "code": "c", "display": "d"},
                }
            )
        ),
        f"{HW}: action[0].extension: override reasons are one shared list, declared on a Library (V2-29)",
    ),
    "suggestion without definition": (
        HW,
        lambda r: r["action"][2]["action"][0].update(definitionCanonical="#missing"),
        f"{HW}: action[2].action[0]: a suggestion is a 'remove', or a 'create'",
    ),
    "invalid FHIR": (
        HW,
        lambda r: r.update(status="finished"),
        f"{HW}: status: status must be draft, active",
    ),
    "plan expression not JSON": (
        HW,
        lambda r: r["action"][0]["condition"][0]["expression"].update(expression='{"fact": '),
        f"{HW}: action[0].condition[0].expression.expression: not JSON",
    ),
    "misspelt resource type": (
        "libraries/common.json",
        set_fact("fusionProcedures", {"select": ["Procedur", "LumbarFusion"]}),
        f"{FUSION}: 'Procedur' is not a FHIR R4 resource type",
    ),
    "criterion without missing words": (
        HW,
        lambda r: r["extension"][HW_CRITERION].update(
            extension=[e for e in r["extension"][HW_CRITERION]["extension"] if e["url"] != "missing"]
        ),
        f"{HW}: extension[{HW_CRITERION}]: criterion 'H1' needs 'missing'",
    ),
    "local code the CodeSystem lacks": (
        "valuesets/RfWoundDrainage.json",
        lambda r: r["compose"]["include"][0]["concept"][0].update(code="rf-wound-drainag"),
        "valuesets/RfWoundDrainage.json: compose.include[0].concept[0].code: local code 'rf-wound-drainag' "
        "is not in the CodeSystem http://postfusion-cds.org/fhir/CodeSystem/local",
    ),
    "criterion code twice": (
        HW,
        lambda r: r["extension"].append(r["extension"][HW_CRITERION]),
        f"{HW}: extension[{HW_EXTENSIONS}]: criterion code 'H1' is declared twice in this plan definition",
    ),
    "misspelt extension url": (
        HW,
        lambda r: r["extension"][1].update(url="http://postfusion-cds.org/fhir/StructureDefinition/criterio"),
        f"{HW}: extension[1].url: unknown extension 'http://postfusion-cds.org/fhir/StructureDefinition/criterio'",
    ),
    "misspelt criterion part": (
        HW,
        lambda r: r["extension"][1]["extension"][1].update(url="lable"),
        f"{HW}: extension[1].extension[1].url: unknown criterion part 'lable'",
    ),
    "criteria of an unknown plan": (
        "libraries/conservative-care.json",
        set_fact("conservativeCareUnmet", {"unmet": "conservative-cares"}),
        "unknown plan definition 'conservative-cares'",
    ),
    "own criteria read from a fact": (
        "libraries/conservative-care.json",
        set_fact("conservativeCareUnmet", {"unmet": []}),
        'a fact must name the plan whose criteria it reads: {"unmet": "plan-id"}',
    ),
    "resource type that cannot be searched by patient": (
        "libraries/common.json",
        set_fact("fusionProcedures", {"select": ["Medication"]}),
        f"{FUSION}: Medication cannot be searched by patient in FHIR R4",
    ),
    "number compared with text": (
        "libraries/surgery.json",
        set_fact("looseScrew", {">": [{"fact": "periScrewLucencyMm"}, "1 mm"]}),
        f"surgery.json: {fact_at('libraries/surgery.json', 'looseScrew')}: '>' compares a number with text",
    ),
    "summary longer than a card allows": (
        RF,
        lambda r: r["action"][0].update(title="Red flag: " + "a" * 120 + " {{daysSinceFusion}}"),
        f"{RF}: action[0].title: the summary can reach 145 characters once {{{{daysSinceFusion}}}} is filled",
    ),
    "unknown parameter in a label": (
        HW,
        lambda r: r["extension"][HW_CRITERION]["extension"][1].update(
            valueString="Failure within {{hardware.lucency}}"
        ),
        f"{HW}: extension[{HW_CRITERION}].extension[1].valueString: "
        "unknown parameter '{{hardware.lucency}}'",
    ),
    "is-a where prefix is not subsumption": (
        "valuesets/Depression.json",
        lambda r: r["compose"]["include"][0].update(system="http://snomed.info/sct"),
        "Depression.json: compose.include[0].filter[0]: is-a on http://snomed.info/sct cannot be",
    ),
    "concepts beside a filter in one include": (
        "valuesets/Depression.json",
        lambda r: r["compose"]["include"][0].update(concept=[{"code": "F32.9"}]),
        "Depression.json: compose.include[0]: put each filter, and the listed concepts, in an include of its "
        "own",
    ),
    "rule id of another plan": (
        HW,
        lambda r: r["action"][0]["code"][0]["coding"][0].update(code="RF-1"),
        f"{HW}: action[0].code: rule id 'RF-1' is used by {RF} too",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_every_problem_names_file_and_path(plans: Path, case: str):
    file, change, expected = BROKEN[case]
    edit(plans / file, change)
    found = problems(plans)
    assert any(expected in problem for problem in found), found


def test_all_problems_are_reported_at_once(plans: Path):
    edit(plans / RF, lambda r: r["action"][0].update(priority="high"))
    edit(plans / HW, lambda r: r.update(library=["http://example.org/Library/other"]))
    assert len(problems(plans)) == 2


def test_files_that_are_not_plan_definitions_are_refused(plans: Path):
    (plans / "notes.json").write_text("{oops")
    (plans / "patient.json").write_text(json.dumps({"resourceType": "Patient", "id": "p"}))
    found = problems(plans)
    assert any(p.startswith("notes.json: invalid JSON") for p in found)
    assert any(p.startswith("patient.json: resourceType: expected PlanDefinition") for p in found)


def test_site_parameters_override_thresholds(plans: Path, tmp_path: Path, client_factory):
    site = tmp_path / "site.json"
    site.write_text(
        json.dumps(
            {"resourceType": "Parameters", "parameter": [{"name": "phq9.threshold", "valueInteger": 20}]}
        )
    )
    default = client_factory(plandefinitions_dir=plans)
    tuned = client_factory(plandefinitions_dir=plans, parameters_file=site)
    url = f"/cds-services/{SERVICES['patient-view']}"

    def summaries(client) -> dict[str, str]:
        cards = client.post(url, json=hook_request("patient-view")).json()["cards"]
        return {card["source"]["topic"]["code"]: id_list(card) for card in cards}

    assert summaries(default)["PATH-CC-INCOMPLETE"] == "C2,C6s,C6d,C6p"
    # a PHQ-9 of 14 is below a site threshold of 20: no depression, so no RISK-DEP and C6d is not required
    tuned_cards = summaries(tuned)
    assert "RISK-DEP" not in tuned_cards
    assert tuned_cards["PATH-CC-INCOMPLETE"] == "C2,C6s,C6p"


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ({"name": "redFlag.lookbackDay", "valueInteger": 2}, "unknown parameter 'redFlag.lookbackDay'"),
        ({"name": "redFlag.lookbackDays", "valueString": "2"}, "'redFlag.lookbackDays' needs valueInteger"),
    ],
)
def test_bad_site_parameters_are_refused(plans: Path, tmp_path: Path, parameter: dict, expected: str):
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"resourceType": "Parameters", "parameter": [parameter]}))
    assert any(expected in problem for problem in problems(plans, site))


def test_the_app_refuses_to_start_on_an_invalid_set(plans: Path, settings_factory):
    edit(plans / RF, lambda r: r["action"][0].update(priority="high"))
    with pytest.raises(RuleSetError):
        create_app(settings_factory(plandefinitions_dir=plans))


def test_serve_exits_with_the_problems_listed(plans: Path):
    edit(plans / RF, lambda r: r["action"][0].update(priority="high"))
    result = subprocess.run(
        [sys.executable, "-m", "cds_service", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"CDS_PLANDEFINITIONS_DIR": str(plans), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert f"{RF}: action[0].priority" in result.stderr


def add_criterion(resource: dict[str, Any]) -> None:
    resource["extension"].append(
        {
            "url": "http://postfusion-cds.org/fhir/StructureDefinition/criterion",
            "extension": [
                {"url": "code", "valueString": "R6"},
                {"url": "label", "valueString": "Fusion documented (test criterion)"},
                {"url": "missing", "valueString": "no fusion documented"},
                {
                    "url": "expression",
                    "valueExpression": {"language": LANGUAGE, "expression": '{"fact": "fusionEvidence"}'},
                },
                {"url": "citation", "valueString": "test criterion"},
            ],
        }
    )


REV = "30-revision.json"


def test_hot_reload_applies_a_new_criterion_and_keeps_serving_on_a_bad_edit(
    plans: Path, client_factory, caplog
):
    client = client_factory(plandefinitions_dir=plans, reload=True)
    url = f"/cds-services/{SERVICES['order-sign']}"

    def revision_detail() -> str:
        cards = client.post(url, json=hook_request("order-sign")).json()["cards"]
        return next(c["detail"] for c in cards if c["source"]["topic"]["code"] == "REV-NOT-MET")

    assert "Fusion documented (test criterion)" not in revision_detail()
    registry = client.app_state["cds"].rules
    started = registry.generation

    def touched_and_reloaded() -> bool:
        (plans / REV).touch()  # unchanged rules: a reload proves the watcher is running
        return registry.generation > started

    wait_for(touched_and_reloaded, timeout=15, what="the watcher to reload after a touch")
    edit(plans / REV, add_criterion)
    wait_for(
        lambda: "- ✓ Fusion documented (test criterion)" in revision_detail(),
        timeout=15,
        interval=0.05,
        what="the new criterion R6 in the REV-NOT-MET card",
    )
    generation = registry.generation

    with caplog.at_level(logging.ERROR, logger="cds_service.plans"):
        edit(plans / REV, lambda r: r["action"][0].update(priority="high"))
        wait_for(lambda: "plan definitions not reloaded" in caplog.text, timeout=15, what="the failed reload")
    assert f"{REV}: action[0].priority" in caplog.text
    assert registry.generation == generation
    assert "Fusion documented (test criterion)" in revision_detail()  # the previous rules still serve


def test_an_advisory_disabled_by_default_is_enabled_by_a_site_parameter(
    plans: Path, tmp_path: Path, client_factory
):
    """ESI-EARLY (RULES.md D12) is off by default; a site turns it on without touching rule logic."""
    from support.requests import discovery_templates
    from support.requests import hook_request as case_request

    case = json.loads((ROOT / "fixtures" / "patients" / "p06-early-exploration.json").read_text())
    draft = {
        "resourceType": "ServiceRequest",
        "id": "p06-early-exploration-draft-esi",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62323"}]},
        "subject": {"reference": "Patient/p06-early-exploration"},
    }
    call = {
        "hook": "order-sign",
        "context": {"draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]}},
    }
    site = tmp_path / "site.json"
    site.write_text(
        json.dumps(
            {"resourceType": "Parameters", "parameter": [{"name": "esiEarly.enabled", "valueBoolean": True}]}
        )
    )
    url = f"/cds-services/{SERVICES['order-sign']}"
    for parameters, expected in ((None, []), (site, [("ESI-EARLY", "info")])):
        client = client_factory(plandefinitions_dir=plans, parameters_file=parameters)
        body = case_request(case, call, discovery_templates(client)["order-sign"])
        assert rule_ids(client.post(url, json=body)) == expected


def test_hot_reload_survives_an_edit_that_broke_the_loader_and_serves_the_next_good_one(
    plans: Path, client_factory, caplog
):
    """A malformed expression in a PlanDefinition used to kill the watcher silently: nothing logged, the
    failed-reload counter unchanged, and later valid edits never served until a restart."""
    client = client_factory(plandefinitions_dir=plans, reload=True)
    url = f"/cds-services/{SERVICES['order-sign']}"
    registry = client.app_state["cds"].rules
    started = registry.generation

    def touched_and_reloaded() -> bool:
        (plans / REV).touch()
        return registry.generation > started

    wait_for(touched_and_reloaded, timeout=15, what="the watcher to reload after a touch")
    generation = registry.generation
    failed_before = REGISTRY.get_sample_value("cds_plan_reloads_total", {"result": "failed"}) or 0
    original = json.loads((plans / REV).read_text())["action"][0]["condition"][0]["expression"]["expression"]
    with caplog.at_level(logging.ERROR, logger="cds_service.plans"):
        edit(plans / REV, lambda r: r["action"][0]["condition"][0]["expression"].update(expression="{oops"))
        wait_for(lambda: "plan definitions not reloaded" in caplog.text, timeout=15, what="the failed reload")
    assert f"{REV}: action[0].condition[0].expression.expression: not JSON" in caplog.text
    assert registry.generation == generation
    assert (REGISTRY.get_sample_value("cds_plan_reloads_total", {"result": "failed"}) or 0) > failed_before
    edit(plans / REV, lambda r: r["action"][0]["condition"][0]["expression"].update(expression=original))
    edit(plans / REV, add_criterion)

    def good_edit_served() -> bool:
        cards = client.post(url, json=hook_request("order-sign")).json()["cards"]
        return any("Fusion documented (test criterion)" in (card.get("detail") or "") for card in cards)

    wait_for(good_edit_served, timeout=15, what="the good edit after the bad one to be served")
    assert registry.generation > generation


def at(resource: Any, path: str) -> Any:
    """The element a problem's path names, read from the file as written."""
    for name, index in re.findall(r"([A-Za-z]+)(?:\[(\d+)\])?", path):
        resource = resource[name] if index == "" else resource[name][int(index)]
    return resource


@pytest.mark.parametrize(
    ("file", "fact", "typo"),
    [
        (HW, "hardwareFailure", "hardwareFailur"),  # a criterion's expression
        (RF, "redFlagsApply", "redFlagsApplz"),  # a card condition
        ("libraries/surgery.json", "pseudarthrosis", "pseudarthrosiz"),  # a fact in a Library
    ],
)
def test_problem_paths_are_literal_paths_of_the_file(plans: Path, file: str, fact: str, typo: str) -> None:
    path = plans / file
    text = path.read_text()
    needle = f'{{\\"fact\\": \\"{fact}\\"}}'
    assert needle in text
    path.write_text(text.replace(needle, needle.replace(fact, typo), 1))
    (problem,) = (p for p in problems(plans) if f"unknown fact '{typo}'" in p)
    location = problem.split(": ")[1]
    assert f'"fact": "{typo}"' in at(json.loads(path.read_text()), location), problem


def add_conservative_care_item(resource: dict[str, Any]) -> None:
    """A C8 added to the conservative-care plan only: no other plan is touched."""
    resource["extension"].append(
        {
            "url": "http://postfusion-cds.org/fhir/StructureDefinition/criterion",
            "extension": [
                {"url": "code", "valueString": "C8"},
                {"url": "label", "valueString": "Course of acupuncture (test criterion)"},
                {"url": "missing", "valueString": "no acupuncture"},
                {"url": "expression", "valueExpression": {"language": LANGUAGE, "expression": "false"}},
                {"url": "citation", "valueString": "test criterion"},
            ],
        }
    )


def test_a_conservative_care_item_added_once_changes_revision_r2(plans: Path, client_factory) -> None:
    """R2 (and S1, HCC) read the conservative-care plan's own checklist: one definition, referenced."""
    from support.requests import discovery_templates
    from support.requests import hook_request as case_request

    case = json.loads((ROOT / "fixtures" / "patients" / "p05-rev-met-pseudarthrosis.json").read_text())
    (sign,) = (call for call in case["calls"] if call["hook"] == "order-sign")
    url = f"/cds-services/{SERVICES['order-sign']}"

    def revision_cards() -> dict[str, str]:
        client = client_factory(plandefinitions_dir=plans)
        body = case_request(case, sign, discovery_templates(client)["order-sign"])
        cards = client.post(url, json=body).json()["cards"]
        return {card["source"]["topic"]["code"]: id_list(card) for card in cards}

    assert "REV-MET" in revision_cards()
    edit(plans / "20-conservative-care.json", add_conservative_care_item)
    after = revision_cards()
    assert "REV-MET" not in after
    assert after["REV-NOT-MET"] == "R2(C8)"


def test_a_site_threshold_of_365_days_reads_12_months_in_the_checklist(
    plans: Path, tmp_path: Path, client_factory
) -> None:
    from support.requests import discovery_templates
    from support.requests import hook_request as case_request

    site = tmp_path / "site.json"
    site.write_text(
        json.dumps(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "revision.minDaysSinceFusion", "valueInteger": 365}],
            }
        )
    )
    case = json.loads((ROOT / "fixtures" / "patients" / "p05-rev-met-pseudarthrosis.json").read_text())
    (sign,) = (call for call in case["calls"] if call["hook"] == "order-sign")
    url = f"/cds-services/{SERVICES['order-sign']}"
    details = {}
    for parameters in (None, site):
        client = client_factory(plandefinitions_dir=plans, parameters_file=parameters)
        body = case_request(case, sign, discovery_templates(client)["order-sign"])
        cards = client.post(url, json=body).json()["cards"]
        details[parameters] = " ".join(card.get("detail", "") for card in cards)
    assert "At least 6 months since the index fusion" in details[None]
    assert "At least 12 months since the index fusion" in details[site]
    assert "{{" not in details[site]
