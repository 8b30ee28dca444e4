"""`QuestionnaireResponse/$extract`: the resources a completed response stands for, as a transaction Bundle.

Items marked `observationExtract` become Observations (their children marked `component` become its
components); each repetition of a group with `itemExtractionContext` becomes one resource of that type, built
from its fixed values and the answers of the items whose `definition` names an element of it. The post-fusion
screen uses both: its findings are Observations, each outside PT or CBT course one completed Procedure
(V2-32, V2-33). Every answer is checked against its item first; a response that does not fit is refused with
every problem at once, each at its path and naming the linkId, and nothing is extracted.

A response with an `identifier` makes the transaction idempotent (`idempotency`). The response's `author`
(the user) is each Observation's performer and each Procedure's recorder: an outside course was performed by
its therapist, the user only recorded it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ..errors import InvalidRequest, Issue
from ..plans.questionnaires import COMPONENT, EXTRACT_CATEGORY, extract_mode, extraction_context
from ..record.dates import parse_date
from .answers import AnswerError, checked
from .definitions import fixed_values, put
from .idempotency import derived, identifier_of, if_none_exist
from .observations import component, observation, reference_type

EXTRACTABLE = frozenset(
    {"completed", "amended"}
)  # SDC: extraction only makes sense once a response is complete
ROOT = "QuestionnaireResponse"
RECORDERS = frozenset({"Practitioner", "PractitionerRole", "Patient", "RelatedPerson"})


def extract(questionnaire: dict[str, Any], response: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The transaction Bundle of what `response` (to `questionnaire`) extracts; InvalidRequest if it does not
    fit. `now` stamps the Bundle, and dates the answers when the response has no `authored`."""
    _same_questionnaire(questionnaire, response)
    extraction = _Extraction(questionnaire, response, now)
    extraction.envelope()
    root_mode = extract_mode(questionnaire, False) is True
    extraction.visit(
        questionnaire.get("item"), response.get("item"), ROOT, "", root_mode, _categories(questionnaire)
    )
    if extraction.issues:
        raise InvalidRequest(extraction.issues)
    return extraction.bundle()


@dataclass
class _Built:
    resource: dict[str, Any]
    link_id: str
    where: str  # the path into the request, for issues
    source: str  # linkIds, repetitions and answer positions: the same for the same response, re-sent
    identifier: dict[str, str] | None = None


@dataclass
class _Extraction:
    questionnaire: dict[str, Any]
    response: dict[str, Any]
    now: datetime
    issues: list[Issue] = field(default_factory=list)
    built: list[_Built] = field(default_factory=list)

    def __post_init__(self) -> None:
        authored = self.response.get("authored")
        self.when = authored if isinstance(authored, str) and parse_date(authored) else self.now.isoformat()
        self.response_url = f"urn:uuid:{uuid.uuid4()}"
        has_id = isinstance(self.response.get("id"), str) and bool(self.response["id"])
        self.derived_from = f"{ROOT}/{self.response['id']}" if has_id else self.response_url
        self.identifier: dict[str, str] | None = None

    def issue(self, diagnostics: str, where: str) -> None:
        self.issues.append(Issue(diagnostics, where))

    def envelope(self) -> None:
        if self.response.get("status") not in EXTRACTABLE:
            self.issue(
                "only a completed (or amended) QuestionnaireResponse can be extracted", f"{ROOT}.status"
            )
        subject = self.response.get("subject")
        if not isinstance(subject, dict) or not isinstance(subject.get("reference"), str):
            self.issue("the response needs a subject (a reference to the patient)", f"{ROOT}.subject")
        try:
            self.identifier = identifier_of(self.response)
        except ValueError as error:
            self.issue(str(error), f"{ROOT}.identifier")

    def visit(
        self,
        items: Any,
        answered: Any,
        path: str,
        source: str,
        mode: bool,
        categories: list[dict[str, Any]],
        context: _Built | None = None,
        components: list[dict[str, Any]] | None = None,
    ) -> None:
        """Pair the response's items at one level with the questionnaire's, by linkId, and extract each."""
        if answered is not None and not isinstance(answered, list):
            self.issue("'item' must be a list of items", f"{path}.item")
            return
        known = {item.get("linkId"): item for item in items or () if isinstance(item, dict)}
        times: Counter[str] = Counter()
        for index, given in enumerate(answered or ()):
            where = f"{path}.item[{index}]"
            link = given.get("linkId") if isinstance(given, dict) else None
            item = known.get(link)
            if item is None or not isinstance(link, str):
                self.issue(f"linkId '{link}' is not an item of this questionnaire here", f"{where}.linkId")
                continue
            times[link] += 1
            if times[link] == 2 and not item.get("repeats"):
                self.issue(f"'{link}' does not repeat, but the response has it more than once", where)
            here = f"{source}/{link}[{times[link] - 1}]"
            self.item(item, given, where, here, mode, categories, context, components)
        for item in known.values():
            if item.get("required") and not any(self.present(item, g) for g in answered or ()):
                self.issue(f"'{item.get('linkId')}' is required", path)

    def present(self, item: dict[str, Any], given: Any) -> bool:
        if not isinstance(given, dict) or given.get("linkId") != item.get("linkId"):
            return False
        return item.get("type") == "group" or bool(given.get("answer"))

    def item(
        self,
        item: dict[str, Any],
        given: dict[str, Any],
        where: str,
        source: str,
        inherited: bool,
        categories: list[dict[str, Any]],
        context: _Built | None,
        components: list[dict[str, Any]] | None,
    ) -> None:
        link = str(item["linkId"])
        mode = extract_mode(item, inherited)
        categories = _categories(item) or categories
        kind = extraction_context(item)
        if kind is not None:
            built = _Built({"resourceType": kind}, link, where, source)
            for definition, value in fixed_values(item):
                put(built.resource, definition, value)
            self.visit(item.get("item"), given.get("item"), where, source, mode is True, categories, built)
            self.finish(built)
            return
        if item.get("type") in {"group", "display"}:
            if given.get("answer"):
                self.issue(f"'{link}' is a {item.get('type')} and takes no answer", f"{where}.answer")
            self.visit(item.get("item"), given.get("item"), where, source, mode is True, categories, context)
            return
        answers = given.get("answer") or []
        if not isinstance(answers, list):
            self.issue("'answer' must be a list of answers", f"{where}.answer")
            return
        if len(answers) > 1 and not item.get("repeats"):
            self.issue(f"'{link}' takes one answer", f"{where}.answer")
        if given.get("item"):
            self.issue(f"the items below '{link}' go below its answer (answer.item)", f"{where}.item")
        for index, answer in enumerate(answers):
            at, origin = f"{where}.answer[{index}]", f"{source}.answer[{index}]"
            try:
                value = checked(item, answer)
            except AnswerError as error:
                self.issue(f"the answer to '{link}' does not fit: {error}", at)
                continue
            if context is not None and isinstance(item.get("definition"), str):
                put(context.resource, item["definition"], value[1])
            if mode == COMPONENT:
                if components is not None:
                    components.append(component(item, value))
                continue
            parts: list[dict[str, Any]] = []
            self.visit(
                item.get("item"), answer.get("item"), at, origin, mode is True, categories, context, parts
            )
            if mode is True and item.get("code") and context is None:
                self.observe(item, value, categories, parts, link, at, origin)

    def observe(
        self,
        item: dict[str, Any],
        value: tuple[str, Any],
        categories: list[dict[str, Any]],
        parts: list[dict[str, Any]],
        link: str,
        where: str,
        source: str,
    ) -> None:
        try:
            resource = observation(
                item, value, self.response, self.when, self.derived_from, categories, parts
            )
        except AnswerError as error:
            self.issue(f"the answer to '{link}' does not fit: {error}", where)
            return
        self.finish(_Built(resource, link, where, source))

    def finish(self, built: _Built) -> None:
        """A resource is kept only if it is valid FHIR R4 with its periods in order."""
        resource = built.resource
        elements = get_fhir_model_class(resource["resourceType"]).model_fields
        if "subject" in elements:
            resource.setdefault("subject", self.response.get("subject"))
        author = self.response.get("author")
        if "recorder" in elements and isinstance(author, dict) and reference_type(author) in RECORDERS:
            resource.setdefault("recorder", author)
        if self.identifier is not None:
            built.identifier = derived(self.identifier, built.source)
            resource.setdefault("identifier", []).append(built.identifier)
        if not _periods_in_order(resource):
            self.issue(f"the answers to '{built.link_id}' end before they start", built.where)
            return
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except ValidationError as error:
            first = error.errors(include_input=False, include_url=False)[0]
            place = ".".join(str(part) for part in first["loc"])
            message = f"the answers to '{built.link_id}' do not make a valid {resource['resourceType']}"
            self.issue(f"{message} ({place}: {first['msg']})", built.where)
            return
        self.built.append(built)

    def bundle(self) -> dict[str, Any]:
        entries = []
        if self.derived_from == self.response_url:  # a response not stored yet travels with what it yields
            entries.append(_entry(self.response_url, self.response, self.identifier))
        entries.extend(
            _entry(f"urn:uuid:{uuid.uuid4()}", built.resource, built.identifier) for built in self.built
        )
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "transaction",
            "timestamp": self.now.isoformat(),
        }
        if entries:
            bundle["entry"] = entries
        return bundle


def _same_questionnaire(questionnaire: dict[str, Any], response: dict[str, Any]) -> None:
    if response.get("resourceType") != ROOT:
        raise InvalidRequest.single("the body must be a QuestionnaireResponse", "resourceType")
    url, _, version = str(response.get("questionnaire") or "").partition("|")
    if url != questionnaire.get("url") or (version and version != questionnaire.get("version")):
        expected = f"{questionnaire.get('url')}|{questionnaire.get('version')}"
        raise InvalidRequest.single(
            f"this response answers another questionnaire; expected {expected}", f"{ROOT}.questionnaire"
        )


def _categories(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Observation.category from `observation-extract-category` on an item or the questionnaire (the
    nearest one that has any wins, as SDC says)."""
    return [
        extension["valueCodeableConcept"]
        for extension in node.get("extension") or ()
        if isinstance(extension, dict)
        and extension.get("url") == EXTRACT_CATEGORY
        and isinstance(extension.get("valueCodeableConcept"), dict)
    ]


def _periods_in_order(node: Any) -> bool:
    if isinstance(node, list):
        return all(_periods_in_order(item) for item in node)
    if not isinstance(node, dict):
        return True
    start, end = parse_date(node.get("start")), parse_date(node.get("end"))
    if start is not None and end is not None and end < start:
        return False
    return all(_periods_in_order(value) for value in node.values())


def _entry(full_url: str, resource: dict[str, Any], identifier: dict[str, str] | None) -> dict[str, Any]:
    """A create; a conditional one (created only if no resource has that identifier) given an identifier."""
    request = {"method": "POST", "url": resource["resourceType"]}
    if identifier is not None:
        request["ifNoneExist"] = if_none_exist(identifier)
    return {"fullUrl": full_url, "resource": resource, "request": request}
