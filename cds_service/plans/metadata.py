"""Knowledge-artifact metadata every PlanDefinition and Library must carry, and the recommendation grades
of their actions.

A clinician who sees a card, and the informaticist who answers for it, must be able to tell which version of
the rules produced it, when that version was written, whether it is in force, and when someone last
reviewed or approved it. So `validate` refuses a PlanDefinition or Library without `version`, `date`,
`status`, and `approvalDate` or `lastReviewDate`. Grades (CPG-on-FHIR: the `cqf-strengthOfRecommendation`
and `cqf-qualityOfEvidence` extensions on `PlanDefinition.action`) are optional, but one that is written
must use a code of its HL7 code system, so a misspelt grade never passes as a grade.

Paths are literal JSON paths of the file: the element itself (`version`) for a missing top-level element,
`action[2].extension[0]` for a grade.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

REQUIRED = {
    "version": "the business version of the rules, cited with every card they produce",
    "date": "when this version was last changed",
    "status": "draft, active, retired or unknown: whether the rules are in force",
}
REVIEW_DATES = ("approvalDate", "lastReviewDate")
ARTIFACTS = frozenset({"PlanDefinition", "Library"})

STRENGTH = "http://hl7.org/fhir/StructureDefinition/cqf-strengthOfRecommendation"
QUALITY = "http://hl7.org/fhir/StructureDefinition/cqf-qualityOfEvidence"
GRADES = {
    STRENGTH: ("http://terminology.hl7.org/CodeSystem/recommendation-strength", ("strong", "weak")),
    QUALITY: (
        "http://terminology.hl7.org/CodeSystem/evidence-quality",
        ("high", "moderate", "low", "very-low"),
    ),
}
# URLs that look like the CPG grades but are defined nowhere: CPG-on-FHIR profiles the core cqf- extensions.
LOOKALIKES = {
    "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-strengthOfRecommendation": STRENGTH,
    "http://hl7.org/fhir/uv/cpg/StructureDefinition/cpg-qualityOfEvidence": QUALITY,
}


def metadata_problems(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(path, message) for each missing metadata element and each malformed recommendation grade."""
    kind = resource.get("resourceType")
    if kind not in ARTIFACTS:
        return
    for element, why in REQUIRED.items():
        value = resource.get(element)
        if not isinstance(value, str) or not value.strip():
            yield element, f"a {kind} needs '{element}': {why}"
    if not any(isinstance(resource.get(element), str) for element in REVIEW_DATES):
        yield (
            "lastReviewDate",
            f"a {kind} needs 'approvalDate' or 'lastReviewDate': when the content was last approved or "
            "reviewed by a clinician",
        )
    for index, action in enumerate(resource.get("action") or ()):
        if isinstance(action, dict):
            yield from _grade_problems(action, f"action[{index}]")


def _grade_problems(action: dict[str, Any], where: str) -> Iterator[tuple[str, str]]:
    for index, extension in enumerate(action.get("extension") or ()):
        url = extension.get("url") if isinstance(extension, dict) else None
        path = f"{where}.extension[{index}]"
        if url in LOOKALIKES:
            yield f"{path}.url", f"'{url}' is not a CPG extension; the grade is '{LOOKALIKES[url]}'"
            continue
        if url not in GRADES:
            continue
        system, codes = GRADES[url]
        concept = extension.get("valueCodeableConcept")
        codings = concept.get("coding") if isinstance(concept, dict) else None
        coding = codings[0] if isinstance(codings, list) and codings else None
        if not isinstance(coding, dict) or coding.get("system") != system or coding.get("code") not in codes:
            yield (
                path,
                f"{url.rsplit('-', 1)[-1]} needs valueCodeableConcept.coding[0] with system "
                f"{system} and a code in {list(codes)}",
            )
