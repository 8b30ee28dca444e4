"""Example hook requests, pointing them at a FHIR server, and how tests compare cards."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cds_service.record import resources_of

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


TOKEN = "opaque-access-token-123"  # the access token with_server() gives a request


def with_server(body: dict[str, Any], base: str, token: str | None = TOKEN) -> dict[str, Any]:
    """Point the request at the FHIR server `base`, with a bearer token (or, with token=None, none)."""
    body["fhirServer"] = base
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "postfusion-cds",
        }
    return body


def serve_prefetch_from(state: Any, body: dict[str, Any]) -> None:
    """Load the request's prefetch data into a test FHIR server (a support.fhir_server.FhirState)."""
    for value in body["prefetch"].values():
        state.load(resources_of(value))


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
