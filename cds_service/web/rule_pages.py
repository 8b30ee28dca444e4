"""A readable page per plan definition: where a card's source link takes the clinician.

It says, from the loaded rules themselves, what the plan checks, each criterion with the source it rests
on, and the cards it can show, so the page never drifts from what the service evaluates.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..errors import NotFound
from ..plans.cards import fill_parameters
from ..plans.model import Plan
from .state import state

INDICATOR_WORDS = {"info": "information", "warning": "warning", "critical": "critical"}


def render_plan(plan: Plan, params: Mapping[str, Any]) -> str:
    """The page, with criterion labels showing this site's thresholds."""
    criteria = "".join(
        f"<li><b>{escape(c.code)}</b> {escape(fill_parameters(c.label, params))}<br>"
        f"<small>Source: {escape(c.citation)}</small></li>"
        for c in plan.criteria
    )
    cards = "".join(
        f"<li><b>{escape(card.rule_id)}</b> ({INDICATOR_WORDS[card.indicator]}; "
        f"{escape(', '.join(sorted(card.hooks)))}): {escape(card.summary)}</li>"
        for card in plan.cards
    )
    sections = [
        f"<h1>{escape(plan.title)}</h1>",
        f"<p>{escape(plan.description)}</p>",
        f"<p><i>{escape(plan.usage)}</i></p>" if plan.usage else "",
        f"<h2>Criteria</h2><ul>{criteria}</ul>" if criteria else "",
        f"<h2>Cards</h2><ul>{cards}</ul>",
        f"<p><small>{escape(plan.source_label)}. Decision support only: it does not replace "
        "clinical judgement.</small></p>",
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(plan.title)}</title></head><body>{''.join(sections)}</body></html>"
    )


async def plan_page(request: Request) -> HTMLResponse:
    plan_id = request.path_params["plan_id"]
    ruleset = state(request).rules.ruleset
    plan = next((p for p in ruleset.plans if p.id == plan_id), None)
    if plan is None:
        raise NotFound.single(f"no plan definition with id '{plan_id}'", "url", "not-found")
    return HTMLResponse(render_plan(plan, ruleset.params))
