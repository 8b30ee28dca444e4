"""`cds-service load-fixtures` moves the synthetic patients to today (or `--as-of`), so the CDS Hooks sandbox
shows on any day the cards the fixtures were written for, and it says which patient shows which.

The proof that the sandbox walk-through works on any date: every case moved a month (a year, years) past its
T0 and opened on that day gives exactly the patient-view cards the fixture expects at T0; not moved, many
do not.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from cds_service import cli
from cds_service.cli.cases import FIXTURE_TAG, Case, describe, expected_of, load_cases, matches
from cds_service.cli.preview import patient_view_cards
from cds_service.cli.rebase import rebase_case, shift_resource
from cds_service.config import Settings
from cds_service.plans.loader import load_ruleset
from cds_service.plans.model import RuleSet

from support.fhir_server import FhirState

CASES = load_cases()
VIEWED = [case for case in CASES if any(call["hook"] == "patient-view" for call in case.calls)]
SERVER = "https://ehr.example.org/fhir"


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    settings = Settings()
    return load_ruleset(settings.plandefinitions_dir, settings.parameters_file)


def patient_view(case: Case) -> dict:
    return next(call for call in case.calls if call["hook"] == "patient-view")


@pytest.mark.parametrize("days", [31, 366, 1500])
@pytest.mark.parametrize("case", VIEWED, ids=[case.id for case in VIEWED])
async def test_a_case_moved_to_a_later_day_shows_the_cards_it_expects_at_t0(
    ruleset: RuleSet, case: Case, days: int
):
    moved = rebase_case(case, case.t0.date() + timedelta(days=days))
    cards = await patient_view_cards(moved, ruleset, SERVER)
    assert cards is not None
    assert matches(cards, patient_view(case)), f"{describe(cards)} != {expected_of(patient_view(case))}"


async def test_without_moving_them_a_month_later_many_cases_show_other_cards(ruleset: RuleSet):
    differ = 0
    for case in VIEWED:
        later = dataclasses.replace(case, t0=case.t0 + timedelta(days=31))
        differ += not matches(await patient_view_cards(later, ruleset, SERVER) or [], patient_view(case))
    assert differ >= 10  # what the rebasing is for: red flags and windows age out


def untagged(resource: dict) -> dict:
    meta = {**resource["meta"], "tag": [t for t in resource["meta"]["tag"] if t != FIXTURE_TAG]}
    return {key: value for key, value in {**resource, "meta": meta}.items() if value != {"tag": []}}


def uploaded(fhir: FhirState) -> list[dict]:
    (bundle,) = fhir.transactions
    return [untagged(entry["resource"]) for entry in bundle["entry"]]


def written() -> list[dict]:
    return [resource for case in CASES for resource in case.resources]


def cards_column(out: str) -> dict[str, list[str]]:
    """The table's cards, by patient id: the text of the cards column on each of its lines."""
    lines = out.splitlines()
    (header,) = [n for n, line in enumerate(lines) if line.startswith("patient ")]
    column = lines[header].index("cards")
    shown: dict[str, list[str]] = {}
    for line in lines[header + 1 : -1]:
        if not line.startswith(" "):
            patient = line.split()[0]
        shown.setdefault(patient, []).append(line[column:])
    return shown


def test_as_of_moves_every_date_and_prints_which_patient_shows_which_cards(fhir, capsys):
    url, state = fhir
    assert cli.main(["load-fixtures", "--fhir", url, "--as-of", "2026-12-01"]) == 0
    out = capsys.readouterr().out
    assert uploaded(state) == [shift_resource(resource, 30) for resource in written()]
    assert "(dated for 2026-12-01)" in out and "patient-view cards on 2026-12-01:" in out
    shown = cards_column(out)
    assert list(shown) == [case.id for case in VIEWED]
    for case in VIEWED:
        expected = sorted(card["ruleId"] for card in patient_view(case)["expected"]) or ["none"]
        assert sorted(text.split(":")[0] for text in shown[case.id]) == expected, shown[case.id]
    assert "PATH-NODATE: Lumbar fusion date not recorded" in shown["p07-nodate-z98"][0]
    assert "p07-nodate-z98 Synthetic" in out  # the name the sandbox's patient banner shows
    showing = sum(bool(patient_view(case)["expected"]) for case in VIEWED)
    assert out.splitlines()[-1] == f"{showing} of {len(VIEWED)} patients show cards at patient-view"


def test_by_default_the_dates_move_to_today(fhir, capsys):
    url, state = fhir
    before = datetime.now(UTC).date()
    assert cli.main(["load-fixtures", "--fhir", url]) == 0
    after = datetime.now(UTC).date()
    moved = uploaded(state)
    days = {(day - CASES[0].t0.date()).days for day in (before, after)}
    assert any(moved == [shift_resource(r, n) for r in written()] for n in days)
    assert f"dated for {after}" in capsys.readouterr().out or before != after


def test_keep_dates_loads_them_as_written(fhir, capsys):
    url, state = fhir
    assert cli.main(["load-fixtures", "--fhir", url, "--keep-dates"]) == 0
    out = capsys.readouterr().out
    assert uploaded(state) == written()
    assert "(dates as written)" in out and "patient-view cards on 2026-11-01" in out


def test_remove_deletes_and_shows_no_cards(fhir, capsys):
    url, state = fhir
    assert cli.main(["load-fixtures", "--fhir", url, "--remove"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("removed ") and "patient-view" not in out
    assert all(entry["request"]["method"] == "DELETE" for entry in state.transactions[0]["entry"])


@pytest.mark.parametrize(
    "args", [["--as-of", "1 December"], ["--as-of", "2026-12-01", "--keep-dates"]], ids=["bad", "both"]
)
def test_a_bad_or_contradictory_date_is_a_usage_error(fhir, capsys, args: list[str]):
    url, state = fhir
    with pytest.raises(SystemExit) as exit_:
        cli.main(["load-fixtures", "--fhir", url, *args])
    assert exit_.value.code == 2
    assert "--as-of" in capsys.readouterr().err
    assert state.transactions == []
