"""Plan definitions mounted from a Kubernetes ConfigMap load exactly as from the repository folder.

The kubelet writes a ConfigMap volume as a timestamped hidden folder holding the files, a `..data` symlink to
it (swapped atomically on update), and one top-level symlink per key into `..data/`. A loader that walks the
folder recursively sees each file three times; only the top-level names are rules.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cds_service.plans.errors import RuleSetError
from cds_service.plans.loader import load_ruleset
from cds_service.plans.model import RuleSet

from support.hooks import ROOT

PLANDEFINITIONS = ROOT / "plandefinitions"
TIMESTAMP_DIR = "..2026_11_22_00_00_00.000000000"


def configmap_volume(target: Path, source: Path = PLANDEFINITIONS) -> Path:
    """The layout the kubelet writes for a ConfigMap whose keys are the folder's file names (flattened)."""
    files = sorted(source.rglob("*.json"))
    assert len({f.name for f in files}) == len(files), "ConfigMap keys are file names: they must be unique"
    payload = target / TIMESTAMP_DIR
    payload.mkdir(parents=True)
    for file in files:
        shutil.copyfile(file, payload / file.name)
    os.symlink(TIMESTAMP_DIR, target / "..data")
    for file in files:
        os.symlink(Path("..data") / file.name, target / file.name)
    return target


def summary(ruleset: RuleSet) -> dict:
    return {
        "plans": [plan.id for plan in ruleset.plans],
        "cards": [[card.rule_id for card in plan.cards] for plan in ruleset.plans],
        "criteria": [[c.code for c in plan.criteria] for plan in ruleset.plans],
        "facts": sorted(ruleset.facts),
        "valuesets": sorted(ruleset.valuesets),
        "params": ruleset.params,
        "prefetch": ruleset.prefetch,
    }


def test_the_volume_layout_is_what_the_kubelet_writes(tmp_path: Path):
    volume = configmap_volume(tmp_path / "plandefinitions")
    names = {p.name for p in volume.iterdir()}
    assert {"..data", TIMESTAMP_DIR, "10-red-flags.json", "common.json", "Crp.json"} <= names
    assert (volume / "..data").is_symlink() and (volume / "Crp.json").is_symlink()
    # a recursive walk reaches every rule file at least twice (by its key, and in the timestamped folder;
    # whether it also follows the `..data` symlink depends on the Python version)
    json_files = list(volume.rglob("*.json"))
    assert len(json_files) >= 2 * len(list(PLANDEFINITIONS.rglob("*.json")))


def test_a_configmap_volume_loads_the_same_rules_as_the_repository_folder(tmp_path: Path):
    expected = load_ruleset(PLANDEFINITIONS)
    mounted = load_ruleset(configmap_volume(tmp_path / "plandefinitions"))
    assert len(mounted.plans) == 7
    assert summary(mounted) == summary(expected)


def test_hidden_files_and_folders_are_not_rules(tmp_path: Path):
    folder = tmp_path / "plans"
    shutil.copytree(PLANDEFINITIONS, folder)
    (folder / ".#10-red-flags.json").write_text("not json: an editor lock file")
    (folder / ".git").mkdir()
    (folder / ".git" / "Broken.json").write_text('{"resourceType": "ValueSet"}')
    assert summary(load_ruleset(folder)) == summary(load_ruleset(PLANDEFINITIONS))


def test_a_folder_below_a_hidden_folder_still_loads(tmp_path: Path):
    # only names below the plan-definition folder count, not where the folder itself lives
    folder = tmp_path / ".config" / "plans"
    shutil.copytree(PLANDEFINITIONS, folder)
    assert summary(load_ruleset(folder)) == summary(load_ruleset(PLANDEFINITIONS))


def test_a_broken_file_in_the_volume_is_still_reported_by_its_key(tmp_path: Path):
    volume = configmap_volume(tmp_path / "plandefinitions")
    (volume / TIMESTAMP_DIR / "Crp.json").write_text("{")
    with pytest.raises(RuleSetError) as caught:
        load_ruleset(volume)
    problems = caught.value.problems
    assert [p.file for p in problems if "invalid JSON" in p.message] == ["Crp.json"]
    assert not [p.file for p in problems if p.file.startswith(".")]
