"""The production app for HTTP benchmarks, with its clock frozen at the synthetic cases' T0 (2026-11-01) so
the cards over HTTP are the ones the in-process benchmark checks. Settings come from CDS_* variables as in
`cds-service serve`; run with `uvicorn bench_app:app --factory --app-dir benchmarks`."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.applications import Starlette

from cds_service.config import Settings
from cds_service.web.app import create_app

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def app() -> Starlette:
    return create_app(Settings(), clock=lambda: T0)
