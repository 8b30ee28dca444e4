"""A call that runs out of memory is a failure the EHR can see (503 with an OperationOutcome and
Retry-After, counted by status), never a 200 whose cards quietly leave plans out; any other defect in one
plan still leaves the other plans' cards standing."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from cds_service.plans import evaluate

from support.hooks import hook_request

PATIENT_VIEW = "/cds-services/postfusion-pain-patient-view"


def _failing(monkeypatch: pytest.MonkeyPatch, error: type[BaseException]) -> None:
    """The first plan of every call raises `error` (a worker out of memory, a plan defect)."""
    real = evaluate._plan_cards

    def plan_cards(plan: Any, *args: Any) -> Any:
        if plan.id == "red-flags":
            raise error("injected")
        return real(plan, *args)

    monkeypatch.setattr(evaluate, "_plan_cards", plan_cards)


def _served(status: str) -> float:
    labels = {
        "action": "call",
        "service": "postfusion-pain-patient-view",
        "hook": "patient-view",
        "status": status,
    }
    return REGISTRY.get_sample_value("cds_requests_total", labels) or 0.0


def test_running_out_of_memory_answers_503_not_a_200_without_the_plans_cards(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing(monkeypatch, MemoryError)
    before = _served("503")
    response = client.post(PATIENT_VIEW, json=hook_request("patient-view"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "too-costly"
    assert "out of memory" in outcome["issue"][0]["diagnostics"]
    assert _served("503") == before + 1


def test_another_defect_in_one_plan_leaves_the_other_plans_cards(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rules(cards: list[dict[str, Any]]) -> list[str]:
        return [card["source"]["topic"]["code"] for card in cards]

    whole = rules(client.post(PATIENT_VIEW, json=hook_request("patient-view")).json()["cards"])
    _failing(monkeypatch, KeyError)
    response = client.post(PATIENT_VIEW, json=hook_request("patient-view"))
    assert response.status_code == 200
    left = rules(response.json()["cards"])
    assert left and left == [rule for rule in whole if not rule.startswith("RF-")]
