"""Request heads are bounded before authentication (#17, 6), in the server `cds-service serve` runs: a 100 MB
`Authorization` header took a worker 11 s and 283 MB, and slow-header and idle sockets were never closed.
Now a head over CDS_MAX_HEADER_BYTES or CDS_MAX_HEADERS gets 431 and the connection closed, and a head not
complete within CDS_HEADER_TIMEOUT_S is closed."""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from support.hooks import SERVICES, hook_request
from support.service_process import ServiceProcess, service_process

TIMEOUT_S = 1.0  # CDS_HEADER_TIMEOUT_S for these tests (10 by default)
CHUNK = b"a" * 65536


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with service_process(tmp_path_factory.mktemp("heads"), CDS_HEADER_TIMEOUT_S=str(TIMEOUT_S)) as running:
        yield running


def connect(service: ServiceProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=10)


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def answer(connection: socket.socket) -> bytes:
    """What the server sent before it closed the connection (a reset after the answer is how a server that
    stopped reading closes)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := connection.recv(65536):
            received += chunk
    return received


def closed_within(connection: socket.socket, seconds: float, trickle: bool) -> bool:
    """Whether the server closes the connection within `seconds`; with `trickle`, one more header byte is
    sent every 0.2 s meanwhile, as a slow-header attack does to keep a connection open."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select([connection], [], [], 0.2)
        if readable:
            try:
                return connection.recv(65536) == b""
            except ConnectionResetError:
                return True
        if trickle:
            try:
                connection.send(b"a")
            except OSError:
                return True
    return False


def test_a_huge_header_is_refused_after_the_limit_not_read_to_its_end(service):
    before = rss_kib(service.process.pid)
    sent = 0
    with connect(service) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\nAuthorization: Bearer ")
        try:
            while sent < 100_000_000:
                connection.sendall(CHUNK)
                sent += len(CHUNK)
        except OSError:  # the server answered and closed
            pass
        reply = answer(connection)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    outcome = orjson.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert outcome["resourceType"] == "OperationOutcome"
    assert "32768 bytes" in outcome["issue"][0]["diagnostics"]
    assert sent < 20_000_000, "refused long before the header's end"
    assert rss_kib(service.process.pid) - before < 20_000, "the worker did not buffer the header"


def test_too_many_header_fields_get_431(service):
    fields = "".join(f"X-Field-{n}: {n}\r\n" for n in range(101))
    with connect(service) as connection:
        connection.sendall(f"GET /healthz HTTP/1.1\r\nHost: cds\r\n{fields}\r\n".encode())
        reply = answer(connection)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"more than 100 header fields" in reply


def test_heads_within_the_limits_and_large_bodies_are_served(service):
    assert httpx.get(f"{service.base}/healthz", headers={f"X-F{n}": "v" * 200 for n in range(90)}).is_success
    body = hook_request("patient-view")
    body["extension"] = {"padding": "x" * 2_000_000}  # the head's chunk carries the body with it
    reply = httpx.post(f"{service.base}/cds-services/{SERVICES['patient-view']}", json=body, timeout=30)
    assert reply.status_code == 200, reply.text[:500]


def test_a_connection_that_trickles_its_headers_is_closed(service):
    with connect(service) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: cds\r\nX-Slow: ")
        assert closed_within(connection, TIMEOUT_S + 3, trickle=True)


def test_a_connection_that_sends_nothing_is_closed(service):
    with connect(service) as connection:
        assert closed_within(connection, TIMEOUT_S + 3, trickle=False)


def test_a_kept_alive_connection_is_still_served_and_its_next_head_bounded(service):
    with httpx.Client(base_url=service.base) as client:
        for _ in range(3):  # one connection: each request's head gets its own deadline
            assert client.get("/healthz").is_success
