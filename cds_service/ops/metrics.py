"""Prometheus metrics: what the service did, never about whom.

Labels take only values from fixed sets (our service ids, hooks, rule ids, statuses), so a caller cannot grow
the series without bound. With several worker processes, set PROMETHEUS_MULTIPROC_DIR (`cds-service serve
--workers N` does) and `/metrics` adds up every worker's values.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "cds_requests",
    "HTTP calls answered, by action (discovery, call, feedback), CDS service, hook and HTTP status.",
    ["action", "service", "hook", "status"],
)
REQUEST_LATENCY = Histogram(
    "cds_request_duration_seconds",
    "Time to answer a call, by action, CDS service and hook.",
    ["action", "service", "hook"],
    buckets=LATENCY_BUCKETS,
)
CARDS = Counter(
    "cds_cards", "Cards returned, by CDS service, rule id and indicator.", ["service", "rule_id", "indicator"]
)
PREFETCH_KEYS = Counter(
    "cds_prefetch_keys",
    "Prefetch keys of answered calls, by whether the client sent them (given) or we fetched them (fetched).",
    ["service", "source"],
)
FHIR_REQUEST_LATENCY = Histogram(
    "cds_fhir_request_duration_seconds",
    "Time of one GET to the client's FHIR server, by outcome (ok, not-found, status, timeout, network).",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
FHIR_FETCH_ERRORS = Counter(
    "cds_fhir_fetch_errors",
    "Prefetch keys not fetched, by kind (refused, timeout, network, status, invalid, too-large).",
    ["kind"],
)
FEEDBACK = Counter(
    "cds_feedback",
    "Feedback items stored, by the rule id that issued the card ('unattributed' if not ours) and outcome.",
    ["rule_id", "outcome"],
)
PLAN_RELOADS = Counter(
    "cds_plan_reloads", "Plan-definition reloads after a change, by result (ok, failed).", ["result"]
)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client lacks a hint
        return registry
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    """The current values in Prometheus' text format, and its content type."""
    return generate_latest(_registry()), CONTENT_TYPE_LATEST
