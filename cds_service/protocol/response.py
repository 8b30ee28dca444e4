"""Cards and the CDS response, serialised by the spec's JSON rule: no nulls, no empty optionals."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SUMMARY_MAX = 139  # the spec says "<140 characters"


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(Wire):
    system: str
    code: str
    display: str | None = None


class Source(Wire):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(Wire):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(Wire):
    label: str
    uuid: str
    isRecommended: bool | None = None
    actions: list[Action] = Field(default_factory=list)


class Link(Wire):
    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"
    appContext: str | None = None


CriterionStatus = Literal["met", "not-met", "not-documented", "not-required"]


class CriterionPart(Wire):
    id: str
    status: CriterionStatus


class CriterionState(Wire):
    """One checklist line for machines (RULES.md V2-27): EHRs, analytics and acceptance tests read this,
    never the summary."""

    id: str
    status: CriterionStatus
    evidence: list[str] = Field(default_factory=list)  # "Type/id" of the records it rests on
    parts: list[CriterionPart] = Field(default_factory=list)  # a breakdown's sub-items: R2's C1…C7


class Card(Wire):
    uuid: str
    summary: str = Field(max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] = Field(default_factory=list)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    # {"postfusion-cds.criteria": [...], "postfusion-cds.draft": "ServiceRequest/…"} (the draft, if any)
    extension: dict[str, list[CriterionState] | str] | None = None


def prune(value: Any) -> Any:
    """Drop None and empty containers recursively (CDS Hooks forbids null and empty optional members)."""
    if isinstance(value, dict):
        pruned = {key: prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item is not None and item != [] and item != {}}
    if isinstance(value, list):
        return [prune(item) for item in value]
    return value


def cds_response(cards: list[Card], system_actions: list[Action] | None = None) -> dict[str, Any]:
    """The 200 body; `cards` is always present, even when empty, as the spec requires."""
    body: dict[str, Any] = {"cards": [prune(card.model_dump(mode="json")) for card in cards]}
    if system_actions:
        body["systemActions"] = [prune(action.model_dump(mode="json")) for action in system_actions]
    return body
