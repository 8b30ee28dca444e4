"""A client that disconnects mid-body (#17, 7) is counted apart (status 499, "client closed request"), not
answered as a 500 with a traceback in the log; the attack found it counted and logged as a server error."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY

from cds_service.config import Settings
from cds_service.web.app import create_app

from support.fhir_server import serving
from support.waiting import wait_for

SERVICE = "postfusion-pain-order-sign"


def _calls(status: str) -> float:
    labels = {"action": "call", "service": SERVICE, "hook": "order-sign", "status": status}
    return REGISTRY.get_sample_value("cds_requests_total", labels) or 0.0


@pytest.fixture
def service(settings_factory: Callable[..., Settings]) -> Iterator[str]:
    with serving(create_app(settings_factory()), lifespan=True) as base:
        yield base


def test_a_client_that_hangs_up_mid_body_is_counted_as_gone_not_as_a_server_error(
    service: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gone, failed = _calls("499"), _calls("500")
    host, port = service.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(
            f"POST /cds-services/{SERVICE} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
            + b'{"hook": "order-sign", "hookInstance": "'
        )
    wait_for(lambda: _calls("499") == gone + 1, timeout=10, what="the disconnect to be counted")
    assert _calls("500") == failed
    assert "Traceback" not in caplog.text and "unhandled" not in caplog.text
    assert any("status=499" in record.getMessage() for record in caplog.records)
