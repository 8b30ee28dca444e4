"""The plan definitions as written, for what the compiled rules do not keep and a rule page shows: each
plan's citations and version, and the display of every code in a value set.

Taken from the artifacts the rules in service were loaded from (site additions included), so a page matches
them even while the folder is being edited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

URL_IN_TEXT = re.compile(r"https?://[^\s()<>]+[^\s()<>.,;:]")


@dataclass(frozen=True, slots=True)
class Citation:
    """One `relatedArtifact`: its title, the full citation, and its URL where known."""

    title: str
    text: str
    url: str | None


@dataclass(frozen=True, slots=True)
class Code:
    """One row of a code list: a code (or, with `below`, the codes under it) and what it means."""

    system: str
    code: str
    display: str
    below: str = ""  # "" an exact code; "is-a" the code and those below it; "descendent-of" only those below


@dataclass(frozen=True, slots=True)
class CodeList:
    title: str
    include: tuple[Code, ...]
    exclude: tuple[Code, ...]


@dataclass(frozen=True, slots=True)
class PlanFiles:
    citations: dict[str, tuple[Citation, ...]]  # plan id -> its relatedArtifact, in order
    versions: dict[str, str]  # plan id -> "version 1.0.0 of 2026-12-02, last reviewed 2026-12"
    code_lists: dict[str, CodeList]  # value set name -> its codes as written


def plan_files(artifacts: dict[str, dict[str, dict[str, Any]]]) -> PlanFiles:
    """The plans' citations and versions and the value sets' codes, from the loaded artifacts."""
    citations: dict[str, tuple[Citation, ...]] = {}
    versions: dict[str, str] = {}
    code_lists: dict[str, CodeList] = {}
    for plan_id, resource in artifacts.get("PlanDefinition", {}).items():
        citations[plan_id] = tuple(_citation(a) for a in resource.get("relatedArtifact") or ())
        versions[plan_id] = _version(resource)
    for resource in artifacts.get("ValueSet", {}).values():
        if isinstance(resource.get("name"), str):
            compose = resource.get("compose") or {}
            code_lists[resource["name"]] = CodeList(
                title=resource.get("title") or resource["name"],
                include=tuple(_codes(compose.get("include") or ())),
                exclude=tuple(_codes(compose.get("exclude") or ())),
            )
    return PlanFiles(citations, versions, code_lists)


def _citation(artifact: dict[str, Any]) -> Citation:
    document = artifact.get("document") or {}
    text = artifact.get("citation") or ""
    title = artifact.get("display") or document.get("title") or artifact.get("label") or text
    in_text = URL_IN_TEXT.search(text)
    url = artifact.get("url") or document.get("url") or (in_text.group(0) if in_text else None)
    return Citation(title=title, text=text if text != title else "", url=url)


def _version(resource: dict[str, Any]) -> str:
    version, date, reviewed = (resource.get(key) for key in ("version", "date", "lastReviewDate"))
    words = " ".join(w for w in (f"version {version}" if version else "", f"of {date}" if date else "") if w)
    if reviewed:
        words = f"{words}, last reviewed {reviewed}" if words else f"last reviewed {reviewed}"
    return words


def _codes(parts: Any) -> list[Code]:
    codes: list[Code] = []
    for part in parts:
        system = part.get("system") or ""
        codes.extend(Code(system, c.get("code", ""), c.get("display", "")) for c in part.get("concept") or ())
        codes.extend(
            Code(system, f.get("value", ""), "", below=f.get("op", ""))
            for f in part.get("filter") or ()
            if f.get("property") == "concept"
        )
    return codes
