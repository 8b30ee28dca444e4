"""`/metrics` after a few calls shows every series operators need, with labels we define (no patient data)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.hooks import SERVICES, hook_request, overridden, serve_prefetch_from, with_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Any) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """Change of one series (metrics are per process, so other tests' calls are in the totals too)."""
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.fixture
def calls(fhir: tuple[str, Any], client_factory: Callable[..., Any]) -> tuple[Any, Samples, Samples, dict]:
    """A mix: a patient-view, an order-sign with fetched prefetch, a 404, a refused FHIR server, feedback."""
    base, state = fhir
    client = client_factory(fhir_allowed_servers=[base])
    before = scrape(client)
    view = client.post(f"/cds-services/{SERVICES['patient-view']}", json=hook_request("patient-view"))
    fetched_body = with_server(hook_request("order-sign"), base)
    serve_prefetch_from(state, fetched_body)
    keys = list(fetched_body.pop("prefetch"))
    sign = client.post(f"/cds-services/{SERVICES['order-sign']}", json=fetched_body)
    refused = with_server(hook_request("order-sign"), "https://not-allowed.example.org/fhir")
    del refused["prefetch"]
    assert client.post(f"/cds-services/{SERVICES['order-sign']}", json=refused).status_code == 412
    assert client.post("/cds-services/no-such-service", json={}).status_code == 404
    card = sign.json()["cards"][0]
    feedback = {
        "feedback": [
            overridden(card),
            {
                "card": "0b7b8a3e-0000-4000-8000-000000000000",
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": "0b7b8a3e-0000-4000-8000-000000000001"}],
                "outcomeTimestamp": "2026-11-01T12:01:00Z",
            },
        ]
    }
    posted = client.post(f"/cds-services/{SERVICES['order-sign']}/feedback", json=feedback)
    assert posted.status_code == 200, posted.text
    info = {"view": view.json(), "sign": sign.json(), "keys": keys, "card": card}
    return client, before, scrape(client), info


def test_requests_by_service_hook_and_status(calls) -> None:
    _, before, after, _ = calls
    sign = SERVICES["order-sign"]
    assert (
        delta(
            before, after, "cds_requests_total", action="call", service=sign, hook="order-sign", status="200"
        )
        == 1
    )
    assert (
        delta(
            before, after, "cds_requests_total", action="call", service=sign, hook="order-sign", status="412"
        )
        == 1
    )
    assert (
        delta(before, after, "cds_requests_total", action="call", service="unknown", hook="-", status="404")
        == 1
    )
    assert (
        delta(
            before,
            after,
            "cds_requests_total",
            action="feedback",
            service=sign,
            hook="order-sign",
            status="200",
        )
        == 1
    )
    assert not any("no-such-service" in str(labels) for _, labels in after)


def test_latency_histograms(calls) -> None:
    _, before, after, _ = calls
    view = SERVICES["patient-view"]
    labels = {"action": "call", "service": view, "hook": "patient-view"}
    assert delta(before, after, "cds_request_duration_seconds_count", **labels) == 1
    assert delta(before, after, "cds_request_duration_seconds_bucket", le="+Inf", **labels) == 1
    assert delta(before, after, "cds_request_duration_seconds_sum", **labels) > 0


def test_cards_by_rule_id_and_indicator(calls) -> None:
    _, before, after, info = calls
    for hook in ("view", "sign"):
        service = SERVICES["patient-view" if hook == "view" else "order-sign"]
        expected: dict[tuple[str, str], int] = {}
        for card in info[hook]["cards"]:
            key = (card["source"]["topic"]["code"], card["indicator"])
            expected[key] = expected.get(key, 0) + 1
        assert expected, "the example requests give cards"
        for (rule, indicator), count in expected.items():
            assert (
                delta(before, after, "cds_cards_total", service=service, rule_id=rule, indicator=indicator)
                == count
            )


def test_prefetch_keys_given_and_fetched(calls) -> None:
    _, before, after, info = calls
    sign, view = SERVICES["order-sign"], SERVICES["patient-view"]
    assert delta(before, after, "cds_prefetch_keys_total", service=sign, source="fetched") == len(
        info["keys"]
    )
    assert delta(before, after, "cds_prefetch_keys_total", service=sign, source="given") == 0
    assert delta(before, after, "cds_prefetch_keys_total", service=view, source="given") > 0
    assert delta(before, after, "cds_prefetch_keys_total", service=view, source="fetched") == 0


def test_fhir_fetch_latency_and_errors(calls) -> None:
    _, before, after, info = calls
    assert delta(before, after, "cds_fhir_request_duration_seconds_count", outcome="ok") >= len(info["keys"])
    assert delta(before, after, "cds_fhir_fetch_errors_total", kind="refused") == len(info["keys"])


def test_feedback_by_rule_id_and_outcome(calls) -> None:
    _, before, after, info = calls
    rule = info["card"]["source"]["topic"]["code"]
    assert delta(before, after, "cds_feedback_total", rule_id=rule, outcome="overridden") == 1
    assert delta(before, after, "cds_feedback_total", rule_id="unattributed", outcome="accepted") == 1


def test_plan_definition_reloads_and_failures(client_factory: Callable[..., Any], tmp_path: Path) -> None:
    import shutil

    from cds_service.config import bundled

    folder = tmp_path / "plans"
    shutil.copytree(bundled("plandefinitions"), folder)
    client = client_factory(plandefinitions_dir=folder)
    before = scrape(client)
    assert client.app_state["cds"].rules.reload()
    (folder / "10-red-flags.json").write_text("{ not json")
    assert not client.app_state["cds"].rules.reload()
    after = scrape(client)
    assert delta(before, after, "cds_plan_reloads_total", result="ok") == 1
    assert delta(before, after, "cds_plan_reloads_total", result="failed") == 1
