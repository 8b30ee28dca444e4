"""Outbound connections go to the address that was checked: the name is resolved once per connection, every
answer is checked (`forbidden_address`), and the socket is opened to one of those answers.

A check that resolves the name and a connect that resolves it again can get two different answers (DNS
rebinding: allowed when checked, 169.254.169.254 when connected). Here httpcore's network backend does both
in one step; TLS still verifies the certificate against the host name (httpcore passes the URL's host as
server_hostname to start_tls) and the Host header is untouched, so only the lookup moves.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable

import httpcore
import httpx

from .allowlist import forbidden_address

# httpx's own defaults for a client's pool
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class ForbiddenAddress(httpx.ConnectError):
    """The host resolved to a link-local, metadata or otherwise never-legitimate address: not connected."""


class UnresolvableHost(httpx.ConnectError):
    """The host name did not resolve."""


async def allowed_addresses(host: str, port: int, timeout: float | None) -> list[str]:
    """The host's addresses from one lookup, in resolver order; refused if any of them is forbidden (a name
    with one bad answer is not trusted with the others)."""
    try:
        async with asyncio.timeout(timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout("host name lookup timed out") from None
    except OSError:
        raise UnresolvableHost("could not resolve host") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses or any(forbidden_address(address) for address in addresses):
        raise ForbiddenAddress("host resolves to an address that is not allowed")
    return addresses


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but TCP connections are opened to checked IP addresses only."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: httpcore.ConnectError | None = None
        for address in await allowed_addresses(host, port, timeout):
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:  # the next answer may be reachable
                failure = exc
        assert failure is not None  # allowed_addresses returns at least one
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose connections are pinned (PinnedBackend). Nothing is
    taken from the environment (SSL_CERT_FILE and the like); `verify` is httpx's.

    HTTP/2 where the server offers it: ALPN over TLS only (no h2c in the clear), so one connection carries
    every prefetch key of a call at once instead of one connection per key, and one TLS handshake is paid
    per server instead of one per key. A server that offers only HTTP/1.1 gets HTTP/1.1; idle connections
    of either kind are kept for the next call (tests/fhir/test_outbound_connections.py)."""

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, limits=_LIMITS, http2=True)
        # httpx offers no network_backend argument; its transport keeps its pool in `_pool`, which a
        # rebinding test (tests/fhir/test_dns_rebinding.py) proves is the pool used.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
            http1=True,
            http2=True,
            network_backend=PinnedBackend(),
        )
