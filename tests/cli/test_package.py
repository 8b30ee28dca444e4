"""`cds-service package`: the FHIR NPM package layout (package.json, one file per resource, .index.json),
every loaded artifact in it exactly once and unchanged, every resource valid R4, and byte-identical builds.
HAPI FHIR loads and validates it in tests/integration/test_hapi_package.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.cli.main import main
from cds_service.plans import canonical
from cds_service.plans.extension_definitions import DEFINITIONS
from cds_service.plans.loader import load_ruleset
from cds_service.plans.model import RuleSet
from cds_service.plans.package import MTIME, PackageError, build_package, package_version, transaction

from support.hooks import ROOT


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_ruleset(ROOT / "plandefinitions")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `.tgz` the command writes into a folder, under the package's own name."""
    folder = tmp_path_factory.mktemp("dist")
    assert main(["package", "--out", f"{folder}/", "--bundle", str(folder / "bundle.json")]) == 0
    return folder


@pytest.fixture(scope="module")
def files(built: Path) -> dict[str, bytes]:
    with tarfile.open(built / "postfusion.cds-2.0.0.tgz", mode="r:gz") as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers()}  # type: ignore[union-attr]


def resources_of(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {
        path: orjson.loads(content)
        for path, content in files.items()
        if path not in {"package/package.json", "package/.index.json"}
    }


def test_the_package_has_the_npm_layout_fhir_tooling_loads(files: dict[str, bytes]):
    assert all(path.startswith("package/") and path.count("/") == 1 for path in files)
    manifest = orjson.loads(files["package/package.json"])
    assert manifest["name"] == "postfusion.cds" and manifest["version"] == "2.0.0"
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1"}
    assert manifest["canonical"] == canonical.BASE
    assert {"title", "description", "license", "author"} <= set(manifest)
    for path, resource in resources_of(files).items():
        assert path == f"package/{resource['resourceType']}-{resource['id']}.json"


def test_the_index_names_every_resource_file_with_its_key_facts(files: dict[str, bytes]):
    index = orjson.loads(files["package/.index.json"])
    assert index["index-version"] == 2
    resources = resources_of(files)
    assert sorted(f"package/{entry['filename']}" for entry in index["files"]) == sorted(resources)
    for entry in index["files"]:
        resource = resources[f"package/{entry['filename']}"]
        assert entry["resourceType"] == resource["resourceType"] and entry["id"] == resource["id"]
        for field in ("url", "version", "kind", "type", "content"):
            if isinstance(resource.get(field), str):
                assert entry[field] == resource[field], (entry["filename"], field)


def test_every_artifact_is_in_the_package_once_and_as_loaded(files: dict[str, bytes], ruleset: RuleSet):
    resources = resources_of(files)
    expected = {
        f"package/{kind}-{key}.json": resource
        for kind, by_id in ruleset.artifacts.items()
        for key, resource in by_id.items()
    }
    assert {path: resources[path] for path in expected} == expected
    rest = {path: r for path, r in resources.items() if path not in expected}
    assert sorted(r["url"] for r in rest.values()) == sorted(d.url for d in DEFINITIONS)


def test_every_resource_is_valid_r4(files: dict[str, bytes], built: Path):
    for path, resource in resources_of(files).items():
        get_fhir_model_class(resource["resourceType"]).model_validate(resource), path
    bundle = orjson.loads((built / "bundle.json").read_bytes())
    get_fhir_model_class("Bundle").model_validate(bundle)
    assert sorted(e["request"]["url"] for e in bundle["entry"]) == sorted(
        f"{r['resourceType']}/{r['id']}" for r in resources_of(files).values()
    )


def test_value_sets_keep_fhirs_include_rules(files: dict[str, bytes]):
    """vsd-3, which the R4B models do not check: an include lists concepts or filters, not both. And one
    filter each: FHIR ANDs the filters of one include, where our compiler would OR them."""
    for path, resource in resources_of(files).items():
        compose = resource.get("compose") or {}
        for part in [*compose.get("include", ()), *compose.get("exclude", ())]:
            assert not (part.get("concept") and part.get("filter")), path
            assert len(part.get("filter") or ()) <= 1, path


def test_two_builds_are_byte_identical(built: Path, tmp_path: Path):
    again = tmp_path / "again.tgz"
    assert main(["package", "--out", str(again)]) == 0
    first = (built / "postfusion.cds-2.0.0.tgz").read_bytes()
    assert again.read_bytes() == first
    assert first[4:8] == b"\0\0\0\0"  # the gzip header's mtime: none
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (MTIME, 0, 0, "", "", 0o644)
    }


def test_our_extensions_are_all_defined_as_the_loader_reads_them():
    assert {definition.url for definition in DEFINITIONS} == canonical.EXTENSIONS
    criterion = next(d for d in DEFINITIONS if d.url == canonical.CRITERION)
    assert tuple(part.name for part in criterion.parts) == canonical.CRITERION_PARTS


def test_the_artifacts_must_share_one_version():
    def library(key: str, version: str) -> dict[str, Any]:
        return {"resourceType": "Library", "id": key, "version": version, "status": "active"}

    artifacts = {"Library": {"a": library("a", "2.0.0"), "b": library("b", "2.1.0")}}
    with pytest.raises(PackageError, match=r"share one version.*2\.0\.0, 2\.1\.0"):
        package_version(artifacts)
    assert "package/Library-a.json" in build_package(artifacts, version="2.1.0")
    assert [e["request"]["url"] for e in transaction(build_package(artifacts, "2.1.0"))["entry"]][-2:] == [
        "Library/a",
        "Library/b",
    ]
