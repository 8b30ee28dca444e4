"""uvicorn's httptools protocol with the limits it lacks, applied before any request reaches the app.

httptools buffers a header until its end and uvicorn sets no bound: one 100 MB `Authorization` header took
a worker 11 s and 283 MB before authentication could refuse it, and a connection that sends nothing, or its
headers a byte at a time, was never closed. Here a request head (request line and headers) over
CDS_MAX_HEADER_BYTES or with more than CDS_MAX_HEADERS fields is answered 431 and the connection closed; a
head not complete within CDS_HEADER_TIMEOUT_S of the connection opening or the request starting is closed.
An idle kept-alive connection is closed by uvicorn's own keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..config import Settings
from ..errors import Issue
from ..protocol.outcome import operation_outcome

log = logging.getLogger("cds_service")


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_bytes: int
    max_fields: int
    timeout_s: float


@functools.cache
def head_limits() -> HeadLimits:
    """Read once per worker process: uvicorn builds the protocol itself, from the environment's settings."""
    settings = Settings()
    return HeadLimits(settings.max_header_bytes, settings.max_headers, settings.header_timeout_s)


class HeadTooLarge(Exception):
    """Raised inside the parser's callback to stop it at once."""


def _answer(status: int, diagnostics: str) -> bytes:
    body = orjson.dumps(operation_outcome([Issue(diagnostics, "headers", "too-long")]))
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/fhir+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that bounds the size, field count and arrival time of every request head."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._limits = head_limits()
        self._head_bytes = 0
        self._fields = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._start_head()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        counting = self._head_deadline is not None
        super().data_received(data)
        # the whole chunk is head only if the head is still incomplete after it (a chunk that completes the
        # head may carry the body too): a head is bounded by the limit plus one read
        if counting and self._head_deadline is not None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_bytes:
                self._refuse(f"the request's headers are over {self._limits.max_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._fields = 0
        if self._head_deadline is None:
            self._start_head()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > self._limits.max_fields:
            self._refuse(f"the request has more than {self._limits.max_fields} header fields")
            raise HeadTooLarge  # stops the parser; uvicorn then offers a 400, which send_400_response drops
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # else the 431 is on its way
            super().send_400_response(msg)

    def _start_head(self) -> None:
        self._head_deadline = self.loop.call_later(self._limits.timeout_s, self._head_too_slow)

    def _stop_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            log.info(
                "closed a connection whose request headers did not arrive in %s s", self._limits.timeout_s
            )
            self.transport.close()

    def _refuse(self, diagnostics: str) -> None:
        self._stop_head()
        log.warning("refused a request head: %s", diagnostics)
        self.transport.write(_answer(431, diagnostics))
        self.transport.close()
