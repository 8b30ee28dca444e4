"""Every synthetic patient's calls through the real app at T0, with every card shown (quiet cards off, so
order-sign's repeats of order-select are read too): what the tests that read all cards share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.testclient import TestClient

from cds_service.config import Settings
from cds_service.web.app import create_app

from support.hooks import ROOT, SERVICES, T0
from support.requests import discovery_templates, hook_request

CASES = [orjson.loads(path.read_bytes()) for path in sorted((ROOT / "fixtures" / "patients").glob("*.json"))]


@contextmanager
def app_at_t0(folder: Path) -> Iterator[TestClient]:
    """The app with its clock at T0, no caller verification and every card shown; its store in `folder`."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'feedback.sqlite3'}",
        reload=False,
        auth="off",
        quiet_cards=False,
    )
    with TestClient(create_app(settings, clock=lambda: T0)) as client:
        yield client


def every_call(client: TestClient) -> Iterator[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    """(case, call, cards) for every call of every synthetic case, answered by `client`."""
    templates = discovery_templates(client)
    for case in CASES:
        for call in case["calls"]:
            body = hook_request(case, call, templates[call["hook"]])
            response = client.post(f"/cds-services/{SERVICES[call['hook']]}", json=body)
            assert response.status_code == 200, response.text
            yield case, call, response.json()["cards"]
