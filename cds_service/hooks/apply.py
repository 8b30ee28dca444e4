"""`PlanDefinition/$apply` (CPG on FHIR): one plan definition applied to a subject and its data, outside
CDS Hooks (batch review, other clients), with the same engine and the same answers.

The input becomes the hook request an EHR would send, with the data as every prefetch key, so the call runs
the same validation, record and evaluation as a card request; the plan's cards become the actions of a
RequestGroup inside a CarePlan: title = summary, description = detail, priority = indicator, the checklist
as extensions, suggestions as sub-actions over contained resources.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import InvalidRequest, Issue
from ..plans import canonical
from ..plans.model import Plan, RuleSet
from ..types import JSONObject
from .call import call_service
from .services import Service

PRIORITY = {"info": "routine", "warning": "urgent", "critical": "stat"}
ACTION_TYPES = "http://terminology.hl7.org/CodeSystem/action-type"
ACTION_KINDS = {"create": "create", "update": "update", "delete": "remove"}  # CDS Hooks -> FHIR action type
ORDER_HOOKS = frozenset({"order-select", "order-sign"})
INPUTS = frozenset({"subject", "data", "practitioner", "encounter", "hook", "draftOrders", "selection"})


@dataclass(frozen=True, slots=True)
class ApplyInput:
    subject: str  # "Patient/id"
    data: list[JSONObject]
    practitioner: str
    encounter: str | None
    hook: str
    draft_orders: list[JSONObject]
    selections: list[str]  # order-select: the drafts just chosen (default: all of them)


def parse_apply(body: Any) -> ApplyInput:
    """The operation's Parameters, checked; InvalidRequest names each problem by its place in the body."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest.single("$apply takes a FHIR Parameters resource", "resourceType")
    given: dict[str, Any] = {}
    selections: list[str] = []
    problems = []
    listed = body.get("parameter") or []
    if not isinstance(listed, list):
        raise InvalidRequest.single("parameter must be an array", "parameter")
    for index, parameter in enumerate(listed):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name not in INPUTS:
            problems.append(
                Issue(f"unknown parameter '{name}'; $apply takes {sorted(INPUTS)}", f"parameter[{index}]")
            )
        elif name == "selection":
            value = parameter.get("valueString")
            if isinstance(value, str) and value:
                selections.append(value)
            else:
                problems.append(
                    Issue("selection needs valueString: ServiceRequest/<id>", f"parameter[{index}]")
                )
        elif name in given:
            problems.append(Issue(f"parameter '{name}' is given twice", f"parameter[{index}]"))
        else:
            given[name] = (index, parameter)
    subject = _string(given, "subject", problems)
    if subject is not None and not (subject.startswith("Patient/") and len(subject) > len("Patient/")):
        problems.append(Issue("subject must be a Patient reference: Patient/<id>", _where(given, "subject")))
    hook = _string(given, "hook", problems) or "patient-view"
    if hook not in {"patient-view", *ORDER_HOOKS}:
        problems.append(
            Issue(
                f"hook must be patient-view, order-select or order-sign, not '{hook}'", _where(given, "hook")
            )
        )
    data = _bundle(given, "data", problems)
    drafts = _bundle(given, "draftOrders", problems)
    if selections and hook != "order-select":
        problems.append(Issue("selection is read by order-select only", "parameter"))
    if drafts and hook not in ORDER_HOOKS:
        problems.append(
            Issue("draftOrders are read by order-select and order-sign only", _where(given, "draftOrders"))
        )
    if subject is None and not any(p.location == _where(given, "subject") for p in problems):
        problems.append(Issue("subject is required (Patient/<id>)", "parameter"))
    if problems:
        raise InvalidRequest(problems)
    assert subject is not None
    return ApplyInput(
        subject=subject,
        data=data,
        practitioner=_string(given, "practitioner", problems) or "Practitioner/unknown",
        encounter=_string(given, "encounter", problems),
        hook=hook,
        draft_orders=drafts,
        selections=selections,
    )


def _where(given: dict[str, Any], name: str) -> str:
    return f"parameter[{given[name][0]}]" if name in given else "parameter"


def _string(given: dict[str, Any], name: str, problems: list[Issue]) -> str | None:
    if name not in given:
        return None
    index, parameter = given[name]
    value = parameter.get("valueString", parameter.get("valueCode"))
    if not isinstance(value, str) or not value:
        problems.append(Issue(f"parameter '{name}' needs valueString", f"parameter[{index}]"))
        return None
    return value


def _bundle(given: dict[str, Any], name: str, problems: list[Issue]) -> list[JSONObject]:
    if name not in given:
        return []
    index, parameter = given[name]
    bundle = parameter.get("resource")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        problems.append(Issue(f"parameter '{name}' needs a Bundle resource", f"parameter[{index}].resource"))
        return []
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        problems.append(Issue("entry must be an array", f"parameter[{index}].resource.entry"))
        return []
    found = []
    for position, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            problems.append(
                Issue("each entry needs a resource", f"parameter[{index}].resource.entry[{position}]")
            )
        else:
            found.append(resource)
    return found


def hook_request(service: Service, given: ApplyInput) -> JSONObject:
    """The CDS Hooks request an EHR would send for this input: every prefetch key answered from `data`."""
    patient_id = given.subject.removeprefix("Patient/")
    context: JSONObject = {"userId": given.practitioner, "patientId": patient_id}
    if given.encounter:
        context["encounterId"] = given.encounter.removeprefix("Encounter/")
    if given.hook in ORDER_HOOKS:
        entries = [{"resource": resource} for resource in given.draft_orders]
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": entries}
        if given.hook == "order-select":
            every = [f"{r['resourceType']}/{r.get('id', '')}" for r in given.draft_orders]
            context["selections"] = given.selections or every
    prefetch = {}
    for key, template in service.prefetch.items():  # searches by patient: each type's records, all of them
        kind = template.partition("?")[0]
        entries = [{"resource": r} for r in given.data if r["resourceType"] == kind]
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    return {"hook": given.hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": prefetch}


async def apply_plan(
    plan: Plan,
    ruleset: RuleSet,
    service: Service,
    given: ApplyInput,
    now: datetime,
    source_base: str | None,
    max_resources: int | None,
) -> JSONObject:
    """The CarePlan for `plan` applied to the input, with no card left out for having been seen before."""
    result = await call_service(
        service, ruleset, hook_request(service, given), None, now, source_base, max_resources
    )
    own = {card.rule_id for card in plan.cards}
    cards = [card for card in result.response["cards"] if card["source"]["topic"]["code"] in own]
    return care_plan(plan, cards, given.subject, now)


def care_plan(plan: Plan, cards: list[JSONObject], subject: str, now: datetime) -> JSONObject:
    contained: list[JSONObject] = []
    actions = [_action(card, contained, subject) for card in cards]
    created = now.isoformat().replace("+00:00", "Z")
    group: JSONObject = {
        "resourceType": "RequestGroup",
        "id": "request-group",
        "instantiatesCanonical": [plan.url],
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": subject},
        "authoredOn": created,
    }
    if actions:
        group["action"] = actions
    return {
        "resourceType": "CarePlan",
        "id": str(uuid.uuid4()),
        "contained": [group, *contained],
        "instantiatesCanonical": [plan.url],
        "status": "draft",
        "intent": "proposal",
        "title": plan.title,
        "subject": {"reference": subject},
        "created": created,
        "activity": [{"reference": {"reference": "#request-group"}}],
    }


def _action(card: JSONObject, contained: list[JSONObject], subject: str) -> JSONObject:
    source = card["source"]
    action: JSONObject = {
        "title": card["summary"],
        "priority": PRIORITY[card["indicator"]],
        "code": [{"coding": [source["topic"]]}],
        "documentation": [
            {
                "type": "documentation",
                "display": source["label"],
                **({"url": source["url"]} if "url" in source else {}),
            },
            *(  # a SMART link launches an app inside the EHR with its context: no document to read
                {"type": "documentation", "display": link["label"], "url": link["url"]}
                for link in card.get("links", [])
                if link.get("type") != "smart"
            ),
        ],
    }
    if "detail" in card:
        action["description"] = card["detail"]
    extension = card.get("extension") or {}
    explanation = [_criterion(state) for state in extension.get(canonical.CRITERIA_EXTENSION, [])]
    if canonical.DRAFT_EXTENSION in extension:
        explanation.append(
            {
                "url": canonical.DRAFT_ORDER,
                "valueReference": {"reference": extension[canonical.DRAFT_EXTENSION]},
            }
        )
    if explanation:
        action["extension"] = explanation
    if "selectionBehavior" in card:
        action["selectionBehavior"] = card["selectionBehavior"]
    sub_actions = [
        _suggestion(s, action_, contained)
        for s in card.get("suggestions", [])
        for action_ in s.get("actions", [])
    ]
    if sub_actions:
        action["action"] = sub_actions
    else:  # a RequestGroup action holds a resource or sub-actions (rqg-1): a card to read is a communication
        local_id = f"communication-{len(contained) + 1}"
        contained.append(_communication(local_id, card, subject))
        action["resource"] = {"reference": f"#{local_id}"}
    return action


def _communication(local_id: str, card: JSONObject, subject: str) -> JSONObject:
    """What CPG proposes for a card that only informs: a CommunicationRequest of its text to the user."""
    text = card["summary"] + (f"\n\n{card['detail']}" if "detail" in card else "")
    return {
        "resourceType": "CommunicationRequest",
        "id": local_id,
        "status": "draft",
        "subject": {"reference": subject},
        "payload": [{"contentString": text}],
    }


def _criterion(state: JSONObject) -> JSONObject:
    parts: list[JSONObject] = [
        {"url": "id", "valueString": state["id"]},
        {"url": "status", "valueCode": state["status"]},
        *({"url": "evidence", "valueReference": {"reference": ref}} for ref in state.get("evidence", [])),
        *(
            {
                "url": "part",
                "extension": [
                    {"url": "id", "valueString": p["id"]},
                    {"url": "status", "valueCode": p["status"]},
                ],
            }
            for p in state.get("parts", [])
        ),
    ]
    return {"url": canonical.CRITERION_STATE, "extension": parts}


def _suggestion(suggestion: JSONObject, action: JSONObject, contained: list[JSONObject]) -> JSONObject:
    kind = ACTION_KINDS[action["type"]]
    sub: JSONObject = {
        "title": suggestion["label"],
        "description": action["description"],
        "type": {"coding": [{"system": ACTION_TYPES, "code": kind}]},
    }
    if "resource" in action:
        local_id = f"suggestion-{len(contained) + 1}"
        contained.append({**action["resource"], "id": local_id})
        sub["resource"] = {"reference": f"#{local_id}"}
    elif "resourceId" in action:
        sub["resource"] = {"reference": action["resourceId"]}
    return sub
