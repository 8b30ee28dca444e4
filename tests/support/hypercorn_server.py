"""An ASGI app served by hypercorn in a background thread: the suite's server that speaks HTTP/2 (negotiated
by ALPN over TLS, or h2c in the clear), unlike uvicorn. Each request's HTTP version and client address (one
per TCP connection) are recorded, so tests see which protocol and how many connections a client used."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.types import ASGIApp, Receive, Scope, Send

from support.waiting import wait_for


@dataclass(frozen=True)
class Arrival:
    http_version: str
    client: tuple[str, int]  # the peer's address and port: one per connection
    path: str


@dataclass
class Arrivals:
    seen: list[Arrival] = field(default_factory=list)

    @property
    def versions(self) -> set[str]:
        return {arrival.http_version for arrival in self.seen}

    @property
    def connections(self) -> int:
        return len({arrival.client for arrival in self.seen})


def _recording(app: ASGIApp, arrivals: Arrivals) -> ASGIApp:
    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope["client"]
            arrivals.seen.append(Arrival(scope["http_version"], (client[0], client[1]), scope["path"]))
        await app(scope, receive, send)

    return recorded


@contextmanager
def serving_hypercorn(
    app: ASGIApp,
    *,
    tls: tuple[Path, Path] | None = None,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    host: str = "127.0.0.1",
) -> Iterator[tuple[int, Arrivals]]:
    """Serve `app` on `host` (a free port), over TLS with (certfile, keyfile) if given, offering `alpn`;
    yield (port, arrivals) and stop the server afterwards."""
    sock = socket.create_server((host, 0))  # bound and listening before the server starts: no race
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{os.dup(sock.fileno())}"]  # hypercorn owns (and closes) the duplicate
    config.alpn_protocols = list(alpn)
    config.graceful_timeout = 1.0
    config.errorlog = None
    if tls is not None:
        config.certfile, config.keyfile = (str(path) for path in tls)
    arrivals = Arrivals()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()

    async def main() -> None:
        started.set()
        recorded: Any = _recording(app, arrivals)  # Starlette's ASGI types, which hypercorn's do not accept
        await serve(recorded, config, shutdown_trigger=stop.wait, mode="asgi")

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True, name=f"h2:{port}")
    thread.start()
    try:
        wait_for(started.is_set, timeout=10, what=f"hypercorn on port {port} to start")
        yield port, arrivals
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
        sock.close()
