"""A site overlay (RULES.md V2-34): a site folder adds its EHR's own codes to the bundled value sets, so a
draft coded only with an EHR orderable still triggers the pathway, without editing the bundled rules."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.valueset import ValueSet

from cds_service.plans.canonical import LOCAL_CODES, SITE_ADDITION
from cds_service.plans.errors import RuleSetError
from cds_service.plans.loader import load_ruleset

from support.hooks import ROOT, SERVICES, hook_request, rule_ids
from support.waiting import wait_for

RULES = ROOT / "plandefinitions"

ORDERABLES = "http://ehr.example.org/orderables"
REVISION_ORDERS = "http://postfusion-cds.org/fhir/ValueSet/RevisionOrders"
EHR_REVISION = {"system": ORDERABLES, "concept": [{"code": "SPINE-REV-01", "display": "Spine revision"}]}
CPT_REVISION = {"system": "http://www.ama-assn.org/go/cpt", "code": "22633"}
ORDER_SELECT = f"/cds-services/{SERVICES['order-select']}"


def addition(*includes: dict[str, Any], url: str = REVISION_ORDERS, **elements: Any) -> dict[str, Any]:
    """A site ValueSet adding `includes` to the bundled value set of `url`."""
    return {
        "resourceType": "ValueSet",
        "url": url,
        "status": "active",
        "compose": {"include": list(includes)},
        **elements,
    }


def site_folder(tmp_path: Path, **files: dict[str, Any] | str) -> Path:
    """A site folder holding each `name=resource` (a resource as JSON, or a str written as it is)."""
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content, indent=2)
        (folder / f"{name}.json").write_text(text)
    return folder


def revision_draft(coding: dict[str, Any]) -> dict[str, Any]:
    """The order-select example with its selected draft ServiceRequest coded only with `coding`."""
    body = hook_request("order-select")
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    assert f"ServiceRequest/{draft['id']}" in body["context"]["selections"]
    draft["code"] = {"coding": [coding], "text": "Spine revision"}
    return body


def ehr_orderable() -> dict[str, Any]:
    return revision_draft({"system": ORDERABLES, "code": "SPINE-REV-01"})


# -- the revision gate fires on the EHR's orderable --------------------------------------------------------


def test_without_a_site_folder_an_ehr_orderable_triggers_no_revision_card(client):
    assert rule_ids(client.post(ORDER_SELECT, json=revision_draft(CPT_REVISION))) == [
        ("REV-NOT-MET", "warning")
    ]
    assert rule_ids(client.post(ORDER_SELECT, json=ehr_orderable())) == []


def test_a_site_addition_gives_the_ehr_orderable_the_revision_card_the_cpt_code_gets(
    tmp_path: Path, client_factory
):
    client = client_factory(site_dir=site_folder(tmp_path, orderables=addition(EHR_REVISION)))
    by_cpt = client.post(ORDER_SELECT, json=revision_draft(CPT_REVISION)).json()["cards"]
    by_orderable = client.post(ORDER_SELECT, json=ehr_orderable()).json()["cards"]
    assert rule_ids({"cards": by_orderable}) == rule_ids({"cards": by_cpt}) == [("REV-NOT-MET", "warning")]
    assert [card["summary"] for card in by_orderable] == [card["summary"] for card in by_cpt]


def test_the_served_value_set_holds_the_site_codes_marked_with_their_file(tmp_path: Path, client_factory):
    client = client_factory(site_dir=site_folder(tmp_path, orderables=addition(EHR_REVISION)))
    served = client.get("/fhir/ValueSet/revision-orders").json()
    ValueSet.model_validate(served)  # still valid FHIR R4
    *bundled, added = served["compose"]["include"]
    as_written = json.loads((RULES / "valuesets" / "RevisionOrders.json").read_text())
    assert bundled == as_written["compose"]["include"]
    assert added == {**EHR_REVISION, "extension": [{"url": SITE_ADDITION, "valueString": "orderables.json"}]}


def test_discovery_asks_the_ehr_for_observations_coded_with_a_site_lab_code(tmp_path: Path, client_factory):
    local_crp = {"system": "http://lab.example.org/codes", "concept": [{"code": "CRP-LOCAL"}]}
    site = site_folder(tmp_path, lab=addition(local_crp, url="http://postfusion-cds.org/fhir/ValueSet/Crp"))
    services = client_factory(site_dir=site).get("/cds-services").json()["services"]
    for service in services:  # observations are fetched by code, so the site's code must be asked for too
        assert "http://lab.example.org/codes|CRP-LOCAL" in service["prefetch"]["observations"]
        assert "http://loinc.org|1988-5" in service["prefetch"]["observations"]


def test_an_empty_site_folder_changes_nothing(tmp_path: Path):
    bundled, overlaid = load_ruleset(RULES), load_ruleset(RULES, site_dir=site_folder(tmp_path))
    assert overlaid.artifacts == bundled.artifacts
    assert overlaid.valuesets == bundled.valuesets and overlaid.params == bundled.params


def test_two_site_files_may_add_to_one_value_set(tmp_path: Path):
    second = {"system": ORDERABLES, "concept": [{"code": "SPINE-REV-02"}]}
    site = site_folder(tmp_path, a=addition(EHR_REVISION), b=addition(second))
    revision = load_ruleset(RULES, site_dir=site).valuesets["RevisionOrders"]
    assert revision.contains(ORDERABLES, "SPINE-REV-01") and revision.contains(ORDERABLES, "SPINE-REV-02")
    assert revision.contains(CPT_REVISION["system"], CPT_REVISION["code"])


def test_the_site_folder_may_hold_the_site_parameters_checked_like_the_parameters_file(tmp_path: Path):
    site = site_folder(tmp_path, parameters=parameters({"name": "phq9.threshold", "valueInteger": 20}))
    assert load_ruleset(RULES, site_dir=site).params["phq9.threshold"] == 20
    (site / "parameters.json").write_text(
        json.dumps(parameters({"name": "phq9.treshold", "valueInteger": 20}))
    )
    assert problems(site) == ["<site>/parameters.json: parameter[0]: unknown parameter 'phq9.treshold'"]


def parameters(*values: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(values)}


def problems(site: Path, parameters_file: Path | None = None) -> list[str]:
    with pytest.raises(RuleSetError) as raised:
        load_ruleset(RULES, parameters_file, site)
    return [str(problem).replace(str(site), "<site>") for problem in raised.value.problems]


# -- what a site may not do --------------------------------------------------------------------------------

CPT_22830 = {"system": "http://www.ama-assn.org/go/cpt", "concept": [{"code": "22830"}]}
REFUSED = {
    "exclude": (
        addition(EHR_REVISION, compose={"include": [EHR_REVISION], "exclude": [CPT_22830]}),
        "<site>/refused.json: compose.exclude: a site may only add codes: taking codes out of a value set is "
        "a change to the rule itself",
    ),
    "url not in the bundled rules": (
        addition(EHR_REVISION, url="http://ehr.example.org/ValueSet/SpineOrders"),
        "<site>/refused.json: url: no bundled value set has the url 'http://ehr.example.org/ValueSet/SpineOrders'"
        ": a site adds codes to the rules' value sets, it does not add value sets",
    ),
    "not a ValueSet": (
        json.loads((RULES / "30-revision.json").read_text()),
        "<site>/refused.json: resourceType: expected a ValueSet (codes added to a bundled value set) or "
        "Parameters (site parameter values), not PlanDefinition: a site adds codes and sets parameters, it "
        "does not change the rules",
    ),
    "bad JSON": (
        '{"resourceType": "ValueSet",',
        "<site>/refused.json: invalid JSON: unexpected end of data: line 1 column 29 (char 28)",
    ),
    "local code the CodeSystem lacks": (
        addition({"system": LOCAL_CODES, "concept": [{"code": "spine-revision"}]}),
        f"<site>/refused.json: compose.include[0].concept[0].code: local code 'spine-revision' is not in the "
        f"CodeSystem {LOCAL_CODES}: a site's own codes go under its own code system",
    ),
    "the rules' own extension": (
        addition(EHR_REVISION, extension=[{"url": SITE_ADDITION, "valueString": "bundled.json"}]),
        f"<site>/refused.json: extension[0].url: extension '{SITE_ADDITION}' belongs to the bundled rules; a "
        "site file may not carry it",
    ),
    "invalid FHIR": (
        {key: value for key, value in addition(EHR_REVISION).items() if key != "status"},
        "<site>/refused.json: status: not valid FHIR R4: Value for the field 'status' is required.",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_site_file_that_is_not_a_plain_addition_is_refused_with_file_path_and_reason(
    case: str, tmp_path: Path
):
    content, expected = REFUSED[case]
    assert problems(site_folder(tmp_path, refused=content)) == [expected]


def test_site_parameters_come_from_one_place(tmp_path: Path):
    site = site_folder(tmp_path, a=parameters(), b=parameters())
    assert problems(site) == [
        "<site>/b.json: site parameters are in <site>/a.json already; a site has one Parameters file"
    ]
    (site / "b.json").unlink()
    elsewhere = tmp_path / "parameters.json"
    elsewhere.write_text(json.dumps(parameters()))
    assert problems(site, elsewhere) == [
        f"<site>/a.json: site parameters are given twice, here and in CDS_PARAMETERS_FILE ({elsewhere}); "
        "keep one"
    ]


def test_a_missing_site_folder_is_refused(tmp_path: Path):
    assert problems(tmp_path / "site") == ["<site>: site folder not found"]


def test_validate_checks_the_site_folder(tmp_path: Path):
    site = site_folder(tmp_path, orderables=addition(EHR_REVISION))
    result = validate(site)
    assert result.returncode == 0, result.stderr
    assert f"codes added by the site folder {site}: RevisionOrders +1" in result.stdout
    (site / "orderables.json").write_text(json.dumps(addition(EHR_REVISION, url=REVISION_ORDERS + "s")))
    result = validate(site)
    assert result.returncode == 1
    assert f"error: {site}/orderables.json: url: no bundled value set has the url" in result.stderr


def validate(site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDS_SITE_DIR": str(site)}
    command = [sys.executable, "-m", "cds_service", "validate"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


# -- hot reload ----------------------------------------------------------------------------------------------


def test_editing_a_site_file_while_serving_changes_the_answer_and_a_bad_edit_keeps_the_rules(
    tmp_path: Path, client_factory, caplog
):
    other = {"system": ORDERABLES, "concept": [{"code": "SPINE-REV-00"}]}
    site = site_folder(tmp_path, orderables=addition(other))
    client = client_factory(site_dir=site, reload=True)
    registry = client.app_state["cds"].rules

    def cards() -> list[tuple[str, str]]:
        return rule_ids(client.post(ORDER_SELECT, json=ehr_orderable()))

    assert cards() == []
    started = registry.generation

    def touched_and_reloaded() -> bool:
        (site / "orderables.json").touch()  # unchanged: a reload proves the watcher follows the site folder
        return registry.generation > started

    wait_for(touched_and_reloaded, timeout=15, what="the watcher to reload after touching a site file")
    site_folder(tmp_path, orderables=addition(other, EHR_REVISION))
    wait_for(lambda: cards() == [("REV-NOT-MET", "warning")], timeout=15, what="the site code to be served")
    generation = registry.generation

    with caplog.at_level(logging.ERROR, logger="cds_service.plans"):
        site_folder(tmp_path, orderables=addition(EHR_REVISION, compose={"include": [], "exclude": [other]}))
        wait_for(lambda: "plan definitions not reloaded" in caplog.text, timeout=15, what="the failed reload")
    assert f"{site}/orderables.json: compose.exclude: a site may only add codes" in caplog.text
    assert registry.generation == generation
    assert cards() == [("REV-NOT-MET", "warning")]  # the previous rules, site codes included, still serve

    site_folder(tmp_path, orderables=addition(other))
    wait_for(lambda: cards() == [], timeout=15, what="the site code to be gone again")
