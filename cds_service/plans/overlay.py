"""A site's own codes added to the bundled value sets (RULES.md V2-34), so drafts coded with an EHR's own
orderables or local lab codes still trigger the pathways, while the bundled rules stay as written.

A site folder (`CDS_SITE_DIR`) holds ValueSet files and at most one Parameters file. A ValueSet there is an
addition: its `compose.include` entries are appended to the bundled value set with the same `url` before
value sets compile, so compiled value sets, derived prefetch and served artifacts see one merged value set.
Additions only: a site cannot take codes out (`compose.exclude`), add a value set no rule reads, or use a code
of the service's own CodeSystem that the CodeSystem does not publish; those would change what a rule means.
Each added include carries the site-addition extension naming its file, so a reader tells site codes apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from . import canonical
from .local_codes import local_concepts
from .terminology import compile_valueset

Files = dict[str, list[tuple[str, dict[str, Any]]]]  # the Loader's resources by type: (file, resource)
Report = Callable[[str, str, str], None]  # (file, JSON path, message)
ValidFhir = Callable[[str, str, dict[str, Any]], bool]  # reports its own problems

NOT_A_NEW_VALUE_SET = "a site adds codes to the rules' value sets, it does not add value sets"
NO_EXCLUDE = "a site may only add codes: taking codes out of a value set is a change to the rule itself"
NOT_LOCAL = "a site's own codes go under its own code system"
NOT_SITE_CONTENT = "a site adds codes and sets parameters, it does not change the rules"


class SiteFolder:
    """One read of a site folder into the Loader's resources; every problem is reported with file and path."""

    def __init__(self, folder: Path, report: Report, valid_fhir: ValidFhir) -> None:
        self.folder = folder
        self.report = report
        self.valid_fhir = valid_fhir

    def merge(self, files: Files, parameters_file: Path | None) -> Path | None:
        """Append every sound addition to its bundled value set in `files`; return the site parameters file
        to apply: the folder's Parameters file, or else `parameters_file` (CDS_PARAMETERS_FILE)."""
        if not self.folder.is_dir():
            self.report(str(self.folder), "", "site folder not found")
            return parameters_file
        bundled = {resource.get("url"): resource for _, resource in files.get("ValueSet", [])}
        defined = local_codes(files)
        site_parameters: Path | None = None
        for path in json_files(self.folder):
            resource = self.parse(path)
            if resource is None:
                continue
            kind = resource.get("resourceType")
            if kind == "ValueSet":
                label = path.relative_to(self.folder).as_posix()
                self.add(str(path), label, resource, bundled, defined)
            elif kind != "Parameters":
                message = (
                    "expected a ValueSet (codes added to a bundled value set) or Parameters (site parameter "
                    f"values), not {kind}: {NOT_SITE_CONTENT}"
                )
                self.report(str(path), "resourceType", message)
            elif site_parameters is not None:
                message = f"site parameters are in {site_parameters} already; a site has one Parameters file"
                self.report(str(path), "", message)
            else:
                site_parameters = path
        if site_parameters is not None and parameters_file is not None:
            message = f"site parameters are given twice, here and in CDS_PARAMETERS_FILE ({parameters_file})"
            self.report(str(site_parameters), "", f"{message}; keep one")
        return site_parameters or parameters_file

    def parse(self, path: Path) -> dict[str, Any] | None:
        try:
            resource = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            self.report(str(path), "", f"invalid JSON: {error}")
            return None
        if not isinstance(resource, dict):
            self.report(str(path), "", "a file must hold one FHIR resource (a JSON object)")
            return None
        return resource

    def add(
        self,
        file: str,
        label: str,
        addition: dict[str, Any],
        bundled: dict[Any, dict[str, Any]],
        defined: set[str],
    ) -> None:
        """Merge one addition into the bundled value set of its url, only if the whole file is sound: half a
        site file merged would be a silent surprise."""
        if not self.valid_fhir(file, "ValueSet", addition):
            return
        problems = list(addition_problems(addition, set(bundled), defined))
        for where, message in problems:
            self.report(file, where, message)
        if problems:
            return
        compose = bundled[addition["url"]].setdefault("compose", {})
        includes = compose.setdefault("include", [])
        includes.extend(marked(include, label) for include in addition["compose"]["include"])


def addition_problems(
    addition: dict[str, Any], bundled_urls: set[Any], defined: set[str]
) -> Iterator[tuple[str, str]]:
    """(JSON path, reason) for each part of a site ValueSet that is not a plain addition of codes."""
    url = addition.get("url")
    if url not in bundled_urls:
        yield "url", f"no bundled value set has the url {url!r}: {NOT_A_NEW_VALUE_SET}"
    compose = addition.get("compose") or {}
    if compose.get("exclude"):
        yield "compose.exclude", NO_EXCLUDE
    if addition.get("expansion"):
        yield "expansion", "a site addition is read from compose.include only; list its codes there"
    includes = compose.get("include") or []
    if not includes:
        yield "compose.include", "an addition needs at least one include"
    yield from _own_extensions(addition, "")
    yield from _undefined_local_codes(includes, defined)
    if includes:
        _, compiled = compile_valueset({"compose": {"include": includes}})
        yield from (("", message) for message in compiled)


def marked(include: dict[str, Any], label: str) -> dict[str, Any]:
    """The include with the extension that names the site file it came from."""
    mark = {"url": canonical.SITE_ADDITION, "valueString": label}
    return {**include, "extension": [*(include.get("extension") or ()), mark]}


def local_codes(files: Files) -> set[str]:
    """The codes the service's own CodeSystem publishes (V2-32)."""
    return set(local_concepts(system for _, system in files.get("CodeSystem", [])))


def json_files(folder: Path) -> Iterator[Path]:
    """The folder's *.json files in name order, hidden paths skipped as the plan-definition loader does
    (editor files, and the `..data` copies in a Kubernetes ConfigMap volume)."""
    for path in sorted(folder.rglob("*.json")):
        if not any(part.startswith(".") for part in path.relative_to(folder).parts):
            yield path


def site_codes(artifacts: dict[str, dict[str, dict[str, Any]]]) -> dict[str, int]:
    """Value set name -> how many codes and filters the site added to it (what `validate` confirms)."""
    added: dict[str, int] = {}
    for valueset in artifacts.get("ValueSet", {}).values():
        for include in (valueset.get("compose") or {}).get("include") or ():
            if any(ext.get("url") == canonical.SITE_ADDITION for ext in include.get("extension") or ()):
                name = str(valueset.get("name"))
                count = len(include.get("concept") or ()) + len(include.get("filter") or ())
                added[name] = added.get(name, 0) + count
    return added


def _undefined_local_codes(includes: Iterable[Any], defined: set[str]) -> Iterator[tuple[str, str]]:
    for index, include in enumerate(includes):
        if not isinstance(include, dict) or include.get("system") != canonical.LOCAL_CODES:
            continue
        for position, concept in enumerate(include.get("concept") or ()):
            code = concept.get("code")
            if code not in defined:
                message = f"local code '{code}' is not in the CodeSystem {canonical.LOCAL_CODES}: {NOT_LOCAL}"
                yield f"compose.include[{index}].concept[{position}].code", message


def _own_extensions(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """The service's own extensions are the rules' (and it marks the site's includes itself)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _own_extensions(item, f"{path}[{index}]")
    elif isinstance(node, dict):
        url = node.get("url")
        if isinstance(url, str) and url.startswith(canonical.OWN_EXTENSIONS):
            where = f"{path}.url" if path else "url"
            yield where, f"extension '{url}' belongs to the bundled rules; a site file may not carry it"
        for key, value in node.items():
            yield from _own_extensions(value, f"{path}.{key}" if path else key)
