"""The knowledge artifacts as a FHIR NPM package (https://hl7.org/fhir/packages.html), the layout FHIR
tooling loads: `package/package.json`, one `package/<ResourceType>-<id>.json` per resource and
`package/.index.json`, in a gzipped tarball.

Pure functions of the loaded artifacts, so the command line and the FHIR facade build the same bytes; the
tarball is deterministic (sorted entries, fixed times and owners) so two builds of the same rules are
byte-identical and a checksum names a release.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from typing import Any

import orjson

from . import canonical
from .extension_definitions import PUBLISHER, structure_definitions

NAME = "postfusion.cds"
FHIR_VERSION = "4.0.1"
CORE = {"hl7.fhir.r4.core": FHIR_VERSION}
TITLE = "Post-fusion back pain CDS knowledge artifacts"
DESCRIPTION = (
    "The plan definitions, libraries (facts and parameters), value sets, code system and questionnaires "
    "of the post-fusion back pain CDS Hooks service, with the definitions of its own extensions."
)
LICENSE = "Apache-2.0"
FOLDER = "package"
MTIME = 499162500  # 1985-10-26T08:15:00Z, the fixed time npm gives every entry of a package
INDEX_FIELDS = ("url", "version", "kind", "type", "supplements", "content")

Artifacts = Mapping[str, Mapping[str, Mapping[str, Any]]]


class PackageError(ValueError):
    """The artifacts cannot make one package (their versions disagree, or two share a file name)."""


def package_version(artifacts: Artifacts) -> str:
    """The one business version the versioned artifacts share: the package is that release of the rules."""
    versions = {
        str(resource["version"])
        for resources in artifacts.values()
        for resource in resources.values()
        if resource.get("version")
    }
    if len(versions) != 1:
        found = ", ".join(sorted(versions)) or "none"
        raise PackageError(f"the artifacts must share one version to make a package; found {found}")
    return versions.pop()


def file_name(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def build_package(artifacts: Artifacts, version: str | None = None) -> dict[str, bytes]:
    """Path inside the tarball -> bytes, for the artifacts (resourceType -> id -> resource) and the
    StructureDefinitions of our extensions; `version` defaults to the artifacts' own."""
    version = version or package_version(artifacts)
    dates = [str(r["date"]) for rs in artifacts.values() for r in rs.values() if r.get("date")]
    resources = [resource for kind in sorted(artifacts) for _, resource in sorted(artifacts[kind].items())]
    resources.extend(structure_definitions(version, max(dates, default=None)))
    files: dict[str, bytes] = {}
    index = []
    for resource in resources:
        name = file_name(resource)
        if name in files:
            raise PackageError(f"two resources would be written to {name}")
        files[f"{FOLDER}/{name}"] = _json(resource)
        index.append(_index_entry(name, resource))
    files[f"{FOLDER}/.index.json"] = _json({"index-version": 2, "files": index})
    files[f"{FOLDER}/package.json"] = _json(_manifest(version))
    return dict(sorted(files.items()))


def tarball(files: Mapping[str, bytes]) -> bytes:
    """The `.tgz`, byte-identical for the same files: sorted entries, fixed mtime, owner and mode."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(files[path]), MTIME, 0o644
            archive.addfile(info, io.BytesIO(files[path]))
    packed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=packed, mtime=0) as compressed:
        compressed.write(raw.getvalue())
    return packed.getvalue()


def tarball_name(version: str) -> str:
    return f"{NAME}-{version}.tgz"


def transaction(files: Mapping[str, bytes]) -> dict[str, Any]:
    """A FHIR transaction Bundle that PUTs every resource of the package, for servers that take a bundle
    rather than a package: conformance resources first, so a server validating on write knows them."""
    order = {"StructureDefinition": 0, "CodeSystem": 1, "ValueSet": 2}
    resources = [
        orjson.loads(content)
        for path, content in files.items()
        if path.startswith(f"{FOLDER}/") and path.count("/") == 1 and _is_resource(path)
    ]
    resources.sort(key=lambda r: (order.get(r["resourceType"], 3), r["resourceType"], r["id"]))
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def _is_resource(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".json") and not name.startswith(".") and name != "package.json"


def _manifest(version: str) -> dict[str, Any]:
    return {
        "name": NAME,
        "version": version,
        "type": "Conformance",
        "canonical": canonical.BASE,
        "url": canonical.BASE,
        "title": TITLE,
        "description": DESCRIPTION,
        "fhirVersions": [FHIR_VERSION],
        "dependencies": CORE,
        "author": PUBLISHER,
        "license": LICENSE,
    }


def _index_entry(name: str, resource: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"filename": name, "resourceType": resource["resourceType"], "id": resource["id"]}
    entry.update({field: resource[field] for field in INDEX_FIELDS if isinstance(resource.get(field), str)})
    return entry


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"
