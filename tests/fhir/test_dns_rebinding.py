"""#17.2: DNS rebinding. The address check and the connection must see the same answer: a name that resolves
to an allowed address when checked and to a forbidden one when connected must never reach the forbidden one.

The resolver is the real one (`socket.getaddrinfo`, which the event loop's lookups call), patched for one
test name whose answer flips on every lookup. A real link-local address cannot be bound here, so 127.0.0.2
stands in for the metadata address: it is added to the forbidden set the service's own predicate reads, and a
listener on it, on the FHIR server's port, records every connection and whether the bearer token came.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from cds_service.auth.errors import AuthError
from cds_service.auth.jwks import JwksCache
from cds_service.config import outbound_client
from cds_service.fhir import allowlist
from cds_service.fhir.pinned import PinnedTransport

from support.fhir_server import FhirState
from support.hooks import SERVICES, TOKEN, hook_request, serve_prefetch_from, with_server
from support.tls import certificates, resolving

NAME = "rebind.test"
ALLOWED, FORBIDDEN = "127.0.0.1", "127.0.0.2"
CALLS = 60
URL = f"/cds-services/{SERVICES['order-sign']}"


class Listener:
    """Accepts on (host, port), counts connections and the ones whose request carried the bearer token."""

    def __init__(self, host: str, port: int) -> None:
        self._socket = socket.create_server((host, port))
        self._socket.settimeout(0.05)
        self.port = port
        self.connections = 0
        self.with_token = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"listener:{host}:{port}")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:  # the accept timeout: look at the stop flag again
                continue
            self.connections += 1
            with connection:
                connection.settimeout(1.0)
                try:
                    head = connection.recv(65_536)
                except OSError:
                    head = b""
                self.with_token += f"Bearer {TOKEN}".encode() in head

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


@pytest.fixture
def metadata_stand_in(fhir: tuple[str, FhirState], monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """127.0.0.2 counts as a metadata address, and a listener there waits on the FHIR server's port."""
    monkeypatch.setattr(allowlist, "_METADATA", allowlist._METADATA | {ipaddress.ip_address(FORBIDDEN)})
    listener = Listener(FORBIDDEN, httpx.URL(fhir[0]).port)
    yield listener
    listener.close()


def test_the_stand_in_is_forbidden_by_the_services_predicate(metadata_stand_in):
    assert allowlist.forbidden_address(FORBIDDEN) and not allowlist.forbidden_address(ALLOWED)


def test_a_name_that_flips_to_a_forbidden_address_never_reaches_it(
    fhir, metadata_stand_in, client_factory, monkeypatch
):
    base, state = fhir
    serve_prefetch_from(state, hook_request("order-sign"))
    rebinding_base = base.replace(ALLOWED, NAME)
    monkeypatch.setattr(socket, "getaddrinfo", resolving({NAME: [ALLOWED, FORBIDDEN]}))
    # time limits generous enough that a loaded machine cannot add a timeout to the refusals
    client = client_factory(fhir_allowed_servers=[rebinding_base], fhir_timeout_s=5, fhir_total_timeout_s=10)
    body = with_server(hook_request("order-sign"), rebinding_base)
    del body["prefetch"]

    statuses, reasons = [], set()
    for _ in range(CALLS):
        response = client.post(URL, json=body)
        statuses.append(response.status_code)
        if response.status_code == 412:
            reasons |= {issue["diagnostics"].rsplit(": ", 1)[1] for issue in response.json()["issue"]}

    reached = (metadata_stand_in.connections, metadata_stand_in.with_token)
    assert reached == (0, 0), f"{reached[0]} connections ({reached[1]} with the token) reached {FORBIDDEN}"
    assert reasons == {"FHIR server address not allowed (link-local or metadata)"}
    assert 412 in statuses and 200 in statuses, "both answers were seen: one refused, one used"
    assert {seen.authorization for seen in state.requests} == {f"Bearer {TOKEN}"}


async def test_a_key_set_url_resolving_to_a_forbidden_address_is_never_fetched(
    metadata_stand_in, settings_factory, monkeypatch
):
    """JWKS fetches share the outbound client: before, their addresses were not checked at all."""
    monkeypatch.setattr(socket, "getaddrinfo", resolving({"keys.example.test": [FORBIDDEN]}))
    async with outbound_client(settings_factory()) as http:
        keys = JwksCache(http, ttl_s=60, refresh_interval_s=0, clock=time.monotonic)
        with pytest.raises(AuthError):
            await keys.get(f"http://keys.example.test:{metadata_stand_in.port}/jwks.json")
    assert metadata_stand_in.connections == 0


# --- TLS over a pinned connection ---------------------------------------------------------------------------

TLS_NAME = "fhir.tls.test"


@dataclass
class TlsServer:
    """A loopback https server with a certificate for TLS_NAME only; records the SNI and Host it saw."""

    port: int
    client_context: ssl.SSLContext  # trusts the server's test CA, and nothing else
    seen: list[tuple[str | None, str]]


@pytest.fixture
async def tls_server(tmp_path) -> AsyncIterator[TlsServer]:
    issued = certificates([TLS_NAME])
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*issued.write(tmp_path))
    seen: list[tuple[str | None, str]] = []
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: names.append(name)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        host = next(line for line in head.decode().split("\r\n") if line.lower().startswith("host:"))
        seen.append((names[-1], host.split(":", 1)[1].strip()))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, ALLOWED, 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    yield TlsServer(port, issued.client_context(), seen)
    server.close()
    await server.wait_closed()


async def test_tls_is_verified_against_the_host_name_not_the_pinned_address(tls_server, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", resolving({TLS_NAME: [ALLOWED], "other.tls.test": [ALLOWED]}))
    async with httpx.AsyncClient(transport=PinnedTransport(verify=tls_server.client_context)) as http:
        response = await http.get(f"https://{TLS_NAME}:{tls_server.port}/fhir/metadata")
        assert response.status_code == 200
        assert tls_server.seen == [(TLS_NAME, f"{TLS_NAME}:{tls_server.port}")]  # SNI and Host kept
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(f"https://other.tls.test:{tls_server.port}/fhir/metadata")  # same IP, other name
