"""ValueSets compiled to set lookups, with ICD-10-CM style prefix matching for `is-a` filters.

An `is-a` filter on a hierarchical code system such as ICD-10-CM means "this code and its children", and a
child code extends its parent's characters (T84.216 -> T84.216A), so a prefix test is exact there. The
`text-match` extension adds a case-insensitive match on the coded text for medications that arrive
uncoded or with product codes we do not list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..record import Entry
from . import canonical

TEXT_MATCH_URL = canonical.TEXT_MATCH
PREFIX_OPS = frozenset({"is-a", "descendent-of"})
# Code systems whose codes extend their parent's characters, so that a prefix test is subsumption. SNOMED CT,
# LOINC, RxNorm or CPT codes carry no hierarchy in their characters: an is-a there needs the codes listed.
PREFIX_HIERARCHIES = frozenset(
    {
        "http://hl7.org/fhir/sid/icd-10-cm",
        "http://hl7.org/fhir/sid/icd-10",
        "http://www.cms.gov/Medicare/Coding/ICD10",  # ICD-10-PCS: each character is an axis
        "http://www.whocc.no/atc",
    }
)


@dataclass(frozen=True, slots=True)
class CodeSet:
    codes: frozenset[tuple[str, str]]
    prefixes: tuple[tuple[str, str], ...]
    descendants_only: frozenset[tuple[str, str]] = frozenset()  # `descendent-of`: children, not the code

    def matches(self, system: str, code: str) -> bool:
        if (system, code) in self.codes:
            return True
        for prefix_system, prefix in self.prefixes:  # a loop, not any(): this runs for every code read
            if system == prefix_system and self.extends(system, prefix, code):
                return True
        return False

    def extends(self, system: str, prefix: str, code: str) -> bool:
        if not code.startswith(prefix):
            return False
        return code != prefix or (system, prefix) not in self.descendants_only


@dataclass(frozen=True, slots=True)
class ValueSet:
    """A compiled ValueSet: membership of a coding, and of an Entry by any of its codings or its text."""

    url: str
    include: CodeSet
    exclude: CodeSet
    text_terms: tuple[str, ...]
    title: str = ""  # how cards name a record it matches: "Formal physical therapy"

    def contains(self, system: str, code: str) -> bool:
        return self.include.matches(system, code) and not (
            (self.exclude.codes or self.exclude.prefixes) and self.exclude.matches(system, code)
        )

    def matches(self, entry: Entry) -> bool:
        return self.accepts(entry.codes, entry.text)

    def accepts(self, codes: Iterable[tuple[str, str]], text: str) -> bool:
        """Whether a record with these codes and this (lower-case) text is in the value set."""
        for system, code in codes:
            if self.contains(system, code):
                return True
        return bool(self.text_terms) and any(term in text for term in self.text_terms)

    def has_code(self, code: str) -> bool:
        """Membership of a bare code, whatever its system (for Observation answers given as codes)."""
        return any(self.contains(system, code) for system, _ in self.include.codes) or any(
            self.include.extends(system, prefix, code) and not self.exclude.matches(system, code)
            for system, prefix in self.include.prefixes
        )

    @property
    def exact_only(self) -> bool:
        """True when membership can be answered from an index of exact codes."""
        return not self.include.prefixes and not self.text_terms


def _code_set(parts: Iterable[dict[str, Any]], problems: list[str], where: str) -> CodeSet:
    codes: set[tuple[str, str]] = set()
    prefixes: list[tuple[str, str]] = []
    strict: set[tuple[str, str]] = set()
    for index, part in enumerate(parts):
        if part.get("valueSet"):
            problems.append(f"{where}[{index}].valueSet: include other value sets by listing their codes")
            continue
        system = part.get("system")
        if not isinstance(system, str):
            problems.append(f"{where}[{index}].system is required")
            continue
        filters = part.get("filter") or ()
        if len(filters) > 1 or (filters and part.get("concept")):
            problems.append(  # FHIR ANDs the filters of one include and forbids concepts beside them (vsd-3)
                f"{where}[{index}]: put each filter, and the listed concepts, in an include of its own"
            )
            continue
        for concept in part.get("concept") or ():
            codes.add((system, concept["code"]))
        for f_index, filt in enumerate(part.get("filter") or ()):
            if filt.get("op") not in PREFIX_OPS or filt.get("property") != "concept":
                problems.append(
                    f"{where}[{index}].filter[{f_index}]: only property 'concept' with op is-a or"
                    " descendent-of is supported"
                )
                continue
            if system not in PREFIX_HIERARCHIES:
                problems.append(
                    f"{where}[{index}].filter[{f_index}]: {filt['op']} on {system} cannot be evaluated by "
                    "code prefix (its codes carry no hierarchy); list the member codes as concepts"
                )
                continue
            prefixes.append((system, filt["value"]))
            if filt["op"] == "descendent-of":
                strict.add((system, filt["value"]))
    return CodeSet(frozenset(codes), tuple(prefixes), frozenset(strict))


def compile_valueset(resource: dict[str, Any]) -> tuple[ValueSet, list[str]]:
    """Compile a ValueSet's `compose` (or its `expansion`); return it with the problems found."""
    problems: list[str] = []
    compose = resource.get("compose") or {}
    include = list(compose.get("include") or ())
    expansion = (resource.get("expansion") or {}).get("contains") or ()
    include.extend({"system": c.get("system"), "concept": [{"code": c["code"]}]} for c in expansion)
    if not include:
        problems.append("compose.include: a value set needs at least one code or filter")
    terms = tuple(
        ext["valueString"].lower()
        for ext in resource.get("extension") or ()
        if ext.get("url") == TEXT_MATCH_URL and isinstance(ext.get("valueString"), str)
    )
    valueset = ValueSet(
        title=resource.get("title") or "",
        url=resource.get("url", ""),
        include=_code_set(include, problems, "compose.include"),
        exclude=_code_set(compose.get("exclude") or (), problems, "compose.exclude"),
        text_terms=terms,
    )
    return valueset, problems
