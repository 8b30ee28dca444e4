"""Example hook requests and how tests compare cards."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
HOOKS_DIR = ROOT / "fixtures" / "hooks"
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SERVICES = {
    "patient-view": "postfusion-pain-patient-view",
    "order-select": "postfusion-pain-order-select",
    "order-sign": "postfusion-pain-order-sign",
}


def hook_request(name: str) -> dict[str, Any]:
    return copy.deepcopy(orjson.loads((HOOKS_DIR / f"{name}.json").read_bytes()))


def rule_ids(response: Any) -> list[tuple[str, str]]:
    """The cards as sorted (rule id, indicator) pairs: how acceptance compares them."""
    body = response if isinstance(response, dict) else response.json()
    return sorted((card["source"]["topic"]["code"], card["indicator"]) for card in body["cards"])


def overridden(card: dict[str, Any]) -> dict[str, Any]:
    """A feedback item overriding `card` with the first reason it offers."""
    return {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": card["overrideReasons"][0]},
        "outcomeTimestamp": "2026-11-01T12:01:00Z",
    }
