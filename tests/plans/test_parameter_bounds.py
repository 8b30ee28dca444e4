"""Site parameters stay within the bounds the Library declares: every numeric parameter has a
parameter-min and a parameter-max, its default lies within them, and a site parameters file with a value
outside them (or of the wrong type) is refused at start and on every reload, naming the file and the
parameter, while the previous rules keep serving."""

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cds_service.plans.canonical import DEFAULT_VALUE, PARAMETER_ALLOWED, PARAMETER_MAX, PARAMETER_MIN
from cds_service.plans.errors import RuleSetError
from cds_service.plans.loader import load_ruleset
from cds_service.web.app import create_app

from support.hooks import ROOT, SERVICES, hook_request, rule_ids
from support.waiting import wait_for

RULES = ROOT / "plandefinitions"
CONSERVATIVE = "libraries/conservative-care.json"
SURGERY = "libraries/surgery.json"
COMMON = "libraries/common.json"


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    folder = tmp_path / "plandefinitions"
    shutil.copytree(RULES, folder)
    return folder


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    resource = json.loads(path.read_text())
    change(resource)
    path.write_text(json.dumps(resource, indent=2))


def problems(folder: Path, site: Path | None = None) -> list[str]:
    with pytest.raises(RuleSetError) as raised:
        load_ruleset(folder, site)
    return [str(problem) for problem in raised.value.problems]


def site_file(folder: Path, *parameters: dict[str, Any], name: str = "site.json") -> Path:
    path = folder / name
    path.write_text(json.dumps({"resourceType": "Parameters", "parameter": list(parameters)}))
    return path


def parameter(resource: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in resource["parameter"] if p["name"] == name)
    return found


def index_of(file: Path, name: str) -> int:
    resource = json.loads(file.read_text())
    return resource["parameter"].index(parameter(resource, name))


def bounds_of(resource: dict[str, Any], name: str) -> tuple[Any, Any]:
    values = {
        e["url"]: e.get("valueInteger", e.get("valueDecimal")) for e in parameter(resource, name)["extension"]
    }
    return values.get(PARAMETER_MIN), values.get(PARAMETER_MAX)


# -- the bundled Libraries -------------------------------------------------------------------------------


def test_every_numeric_parameter_declares_bounds_around_its_default():
    for path in sorted((RULES / "libraries").glob("*.json")):
        for declared in json.loads(path.read_text()).get("parameter") or ():
            if declared["type"] not in {"integer", "decimal"}:
                continue
            values = {e["url"]: e for e in declared["extension"]}
            element = "valueInteger" if declared["type"] == "integer" else "valueDecimal"
            low, high = values[PARAMETER_MIN][element], values[PARAMETER_MAX][element]
            assert low <= values[DEFAULT_VALUE][element] <= high, f"{path.name}: {declared['name']}"


def test_bounds_keep_the_ranges_the_clinical_rules_allow():
    """RULES.md D1 and D2 give these ranges; NICE TA159 asks for 6 months of pain and 50 mm on a VAS;
    S000 asks for physical therapy over at least 6 weeks; S003's block and lucency thresholds."""
    surgery = json.loads((RULES / SURGERY).read_text())
    conservative = json.loads((RULES / CONSERVATIVE).read_text())
    neuromodulation = json.loads((RULES / "libraries/neuromodulation.json").read_text())
    assert bounds_of(surgery, "revision.minDaysSinceFusion") == (180, 365)
    assert bounds_of(conservative, "conservative.minFailureDays") == (90, 180)
    assert bounds_of(conservative, "pt.minSpanDays")[0] == 42
    assert bounds_of(neuromodulation, "scs.minPainDays")[0] == 180
    assert bounds_of(neuromodulation, "scs.minNRS")[0] == 5
    assert bounds_of(surgery, "block.diagnosticPct")[0] == 50
    assert bounds_of(surgery, "block.hardwarePct")[0] == 70
    assert bounds_of(surgery, "hardware.lucencyMm")[0] == 1.0


# -- site parameters -------------------------------------------------------------------------------------

OUT_OF_BOUNDS = {
    "pt.minSessions": (-5, "is not between 6 and 36 (its bounds in libraries/conservative-care.json)"),
    "revision.minDaysSinceFusion": (30, "is not between 180 and 365 (its bounds in libraries/surgery.json)"),
    "redFlag.lookbackDays": (-5, "is not between 7 and 30 (its bounds in libraries/common.json)"),
}


@pytest.mark.parametrize("name", sorted(OUT_OF_BOUNDS))
def test_a_site_value_out_of_bounds_is_refused_naming_file_and_parameter(
    plans: Path, tmp_path: Path, name: str
):
    value, bounds = OUT_OF_BOUNDS[name]
    site = site_file(
        tmp_path, {"name": "phq9.threshold", "valueInteger": 12}, {"name": name, "valueInteger": value}
    )
    expected = f"{site}: parameter[1].valueInteger: '{name}' = {value} {bounds}"
    assert problems(plans, site) == [expected]


def test_site_values_at_the_bounds_are_accepted(plans: Path, tmp_path: Path):
    site = site_file(
        tmp_path,
        {"name": "revision.minDaysSinceFusion", "valueInteger": 365},
        {"name": "pt.minSessions", "valueInteger": 6},
        {"name": "crp.thresholdMgL", "valueDecimal": 20},
    )
    params = load_ruleset(plans, site).params
    assert (params["revision.minDaysSinceFusion"], params["pt.minSessions"], params["crp.thresholdMgL"]) == (
        365,
        6,
        20,
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {"name": "pt.minSessions", "valueDecimal": 6.5},
            "parameter[0]: 'pt.minSessions' needs valueInteger",
        ),
        (
            {"name": "crp.thresholdMgL", "valueString": "12"},
            "parameter[0]: 'crp.thresholdMgL' needs valueDecimal",
        ),
        (
            {"name": "crp.thresholdMgL", "valueDecimal": 2.5},
            "'crp.thresholdMgL' = 2.5 is not between 5 and 20",
        ),
    ],
)
def test_a_site_value_of_the_wrong_type_or_range_is_refused(
    plans: Path, tmp_path: Path, given: dict, expected: str
):
    site = site_file(tmp_path, given)
    assert any(problem.startswith(f"{site}: ") and expected in problem for problem in problems(plans, site))


def test_the_app_refuses_to_start_with_an_out_of_bounds_site_file(
    plans: Path, tmp_path: Path, settings_factory
):
    site = site_file(tmp_path, {"name": "revision.minDaysSinceFusion", "valueInteger": 30})
    with pytest.raises(RuleSetError) as raised:
        create_app(settings_factory(plandefinitions_dir=plans, parameters_file=site))
    assert [problem.file for problem in raised.value.problems] == [str(site)]


def test_serve_exits_listing_the_out_of_bounds_site_value(plans: Path, tmp_path: Path):
    site = site_file(tmp_path, {"name": "pt.minSessions", "valueInteger": -5})
    result = subprocess.run(
        [sys.executable, "-m", "cds_service", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "CDS_PLANDEFINITIONS_DIR": str(plans),
            "CDS_PARAMETERS_FILE": str(site),
            "PATH": "/usr/bin:/bin",
        },
    )
    assert result.returncode == 1
    assert (
        f"{site}: parameter[0].valueInteger: 'pt.minSessions' = -5 is not between 6 and 36" in result.stderr
    )


# -- the Library's declarations --------------------------------------------------------------------------


def test_a_default_outside_its_bounds_is_refused(plans: Path):
    index = index_of(plans / SURGERY, "revision.minDaysSinceFusion")

    def lower(resource: dict[str, Any]) -> None:
        parameter(resource, "revision.minDaysSinceFusion")["extension"][0]["valueInteger"] = 30

    edit(plans / SURGERY, lower)
    expected = (
        f"{SURGERY}: parameter[{index}].extension[0].valueInteger: the default of "
        "'revision.minDaysSinceFusion' (30) is not between 180 and 365"
    )
    assert problems(plans) == [expected]


def without(*urls: str) -> Callable[[dict[str, Any]], None]:
    def change(resource: dict[str, Any]) -> None:
        declared = parameter(resource, "pt.minSessions")
        declared["extension"] = [e for e in declared["extension"] if e["url"] not in urls]

    return change


@pytest.mark.parametrize(
    ("removed", "missing"),
    [
        ((PARAMETER_MIN, PARAMETER_MAX), "parameter-min and parameter-max"),
        ((PARAMETER_MAX,), "parameter-max"),
    ],
)
def test_a_numeric_parameter_without_bounds_is_refused(plans: Path, removed: tuple[str, ...], missing: str):
    index = index_of(plans / CONSERVATIVE, "pt.minSessions")
    edit(plans / CONSERVATIVE, without(*removed))
    expected = (
        f"{CONSERVATIVE}: parameter[{index}]: the integer parameter 'pt.minSessions' needs bounds: add "
        f"{missing} (valueInteger)"
    )
    assert [p for p in problems(plans) if p.startswith(expected)], problems(plans)


def set_bound(name: str, bound: str, **value: Any) -> Callable[[dict[str, Any]], None]:
    def change(resource: dict[str, Any]) -> None:
        for extension in parameter(resource, name)["extension"]:
            if extension["url"] == bound:
                extension.pop("valueInteger", None)
                extension.pop("valueDecimal", None)
                extension.update(value)

    return change


def test_bounds_of_the_wrong_type_or_order_are_refused(plans: Path):
    index = index_of(plans / CONSERVATIVE, "pt.minSessions")
    edit(plans / CONSERVATIVE, set_bound("pt.minSessions", PARAMETER_MIN, valueDecimal=5.5))
    edit(plans / SURGERY, set_bound("odi.severe", PARAMETER_MAX, valueInteger=20))
    found = problems(plans)
    assert (
        f"{CONSERVATIVE}: parameter[{index}].extension[1]: parameter-min of the integer parameter "
        "'pt.minSessions' needs valueInteger"
    ) in found
    odi = index_of(plans / SURGERY, "odi.severe")
    assert (
        f"{SURGERY}: parameter[{odi}].extension[2].valueInteger: parameter-max of 'odi.severe' (20) is below "
        "its parameter-min (41)"
    ) in found


def test_bounds_on_a_boolean_parameter_are_refused(plans: Path):
    def bound(resource: dict[str, Any]) -> None:
        parameter(resource, "esiEarly.enabled")["extension"].append({"url": PARAMETER_MIN, "valueInteger": 0})

    path = plans / "libraries/risk-and-medicines.json"
    index = index_of(path, "esiEarly.enabled")
    edit(path, bound)
    assert (
        f"libraries/risk-and-medicines.json: parameter[{index}].extension[1]: a boolean parameter takes no "
        "parameter-min; only integer and decimal ones have bounds"
    ) in problems(plans)


def test_a_misspelt_bound_extension_is_an_unknown_extension(plans: Path):
    misspelt = PARAMETER_MIN + "imum"
    edit(plans / COMMON, set_bound("redFlag.lookbackDays", PARAMETER_MIN, url=misspelt, valueInteger=7))
    found = problems(plans)
    assert any(f"unknown extension '{misspelt}'" in problem for problem in found), found
    assert any("'redFlag.lookbackDays' needs bounds: add parameter-min (valueInteger)" in p for p in found)


def add_mode(default: str) -> Callable[[dict[str, Any]], None]:
    def change(resource: dict[str, Any]) -> None:
        resource["parameter"].append(
            {
                "name": "site.mode",
                "use": "in",
                "type": "string",
                "extension": [
                    {"url": DEFAULT_VALUE, "valueString": default},
                    {"url": PARAMETER_ALLOWED, "valueString": "strict"},
                    {"url": PARAMETER_ALLOWED, "valueString": "lenient"},
                ],
            }
        )

    return change


def test_a_string_parameter_may_list_its_allowed_values(plans: Path, tmp_path: Path):
    edit(plans / COMMON, add_mode("strict"))
    assert (
        load_ruleset(plans, site_file(tmp_path, {"name": "site.mode", "valueString": "lenient"})).params[
            "site.mode"
        ]
        == "lenient"
    )
    site = site_file(tmp_path, {"name": "site.mode", "valueString": "loose"})
    assert problems(plans, site) == [
        f"{site}: parameter[0].valueString: 'site.mode' = 'loose' is not one of ['strict', 'lenient'] "
        f"(its bounds in {COMMON})"
    ]


def test_a_string_default_outside_its_allowed_values_is_refused(plans: Path):
    edit(plans / COMMON, add_mode("loose"))
    index = len(json.loads((plans / COMMON).read_text())["parameter"]) - 1
    assert problems(plans) == [
        f"{COMMON}: parameter[{index}].extension[0].valueString: the default of 'site.mode' ('loose') is not "
        "one of ['strict', 'lenient']"
    ]


# -- hot reload ------------------------------------------------------------------------------------------


def test_hot_reload_with_an_out_of_bounds_site_file_keeps_the_previous_rules(
    plans: Path, tmp_path: Path, client_factory, caplog
):
    site = site_file(tmp_path, {"name": "phq9.threshold", "valueInteger": 20})
    client = client_factory(plandefinitions_dir=plans, parameters_file=site, reload=True)
    registry = client.app_state["cds"].rules
    url = f"/cds-services/{SERVICES['patient-view']}"

    def cards() -> set[str]:
        return {rule for rule, _ in rule_ids(client.post(url, json=hook_request("patient-view")))}

    # the patient's PHQ-9 of 14 is below the site's 20: no depression card
    assert "RISK-DEP" not in cards()
    started = registry.generation

    def touched_and_reloaded() -> bool:
        site.touch()  # unchanged parameters: a reload proves the watcher follows the site file
        return registry.generation > started

    wait_for(touched_and_reloaded, timeout=15, what="the watcher to reload after touching the site file")
    generation = registry.generation

    with caplog.at_level(logging.ERROR, logger="cds_service.plans"):
        site_file(tmp_path, {"name": "revision.minDaysSinceFusion", "valueInteger": 30})
        wait_for(lambda: "plan definitions not reloaded" in caplog.text, timeout=15, what="the failed reload")
    assert (
        f"{site}: parameter[0].valueInteger: 'revision.minDaysSinceFusion' = 30 is not between 180 and 365"
    ) in caplog.text
    assert registry.generation == generation
    assert registry.ruleset.params["phq9.threshold"] == 20  # the previous rules and parameters still serve
    assert "RISK-DEP" not in cards()

    site_file(tmp_path, {"name": "phq9.threshold", "valueInteger": 10})
    wait_for(lambda: "RISK-DEP" in cards(), timeout=15, interval=0.05, what="the good site file to be served")
    assert registry.generation > generation
    assert registry.ruleset.params["revision.minDaysSinceFusion"] == 180
