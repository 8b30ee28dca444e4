"""Every error becomes an HTTP status and an OperationOutcome here, and only here.

The pipeline below raises domain errors (`cds_service.errors`); the two that exist only at the HTTP edge
(an unverified caller, a body that is not JSON) are defined here. No stack trace reaches the client.
"""

from __future__ import annotations

import logging
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import (
    DataUnavailable,
    Exhausted,
    InvalidRequest,
    Issue,
    NotFound,
    ServiceError,
    TooLarge,
    Unavailable,
)
from ..store import OUTAGES
from .responses import JSON, outcome_response

log = logging.getLogger("cds_service")


class Unauthenticated(ServiceError):
    """The caller's JWT is missing or rejected (the reason goes to the log, not to the caller), or a SMART
    app's access token, which its FHIR server refused."""


class Forbidden(ServiceError):
    """The caller asks for what it may not have: a FHIR server off the allowlist, another patient."""


class BadGateway(ServiceError):
    """A FHIR server the service had to ask could not be reached, or answered with no usable answer."""


class UnsupportedMediaType(ServiceError):
    """The body is not JSON."""


class ClientGone(ServiceError):
    """The caller closed the connection before its body arrived: nobody is left to answer. Counted apart
    as 499 (nginx's "client closed request"), neither a client error it can read nor a server failure."""


STATUS: dict[type[ServiceError], int] = {
    InvalidRequest: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    DataUnavailable: 412,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    ClientGone: 499,
    BadGateway: 502,
    Exhausted: 503,
    Unavailable: 503,
}
# a worker out of memory now may have it again in a moment; a database restarting is back in seconds
RETRY_AFTER_S = {Exhausted: 5, Unavailable: 5}
OUTAGE_LOG_EVERY_S = 10.0  # an outage is one line per interval, not a line per call (the audit has those)
DATABASE_AWAY = "the service's database cannot be reached just now; nothing was stored; try again shortly"


def status_of(error: BaseException) -> int:
    """The HTTP status an error ends a call with: its kind's, 503 for a database outage, else 500."""
    if isinstance(error, ServiceError):
        return next(status for kind, status in STATUS.items() if isinstance(error, kind))
    return 503 if isinstance(error, OUTAGES) else 500


async def service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    response: Response = outcome_response(status_of(error), error.issues)
    retry = next((s for kind, s in RETRY_AFTER_S.items() if isinstance(error, kind)), None)
    if retry is not None:
        response.headers["Retry-After"] = str(retry)
    return response


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method), as OperationOutcomes."""
    assert isinstance(error, HTTPException)
    code = {404: "not-found", 405: "not-supported"}.get(error.status_code, "processing")
    messages = {404: f"no route for {request.url.path}", 405: f"method {request.method} is not allowed here"}
    response: JSON = outcome_response(
        error.status_code, [Issue(messages.get(error.status_code, str(error.detail)), "url", code)]
    )
    if error.headers:
        response.headers.update(error.headers)
    return response


class _Throttle:
    """Says yes at most once per interval."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last = -interval_s

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            return False
        self._last = now
        return True


_outage_log = _Throttle(OUTAGE_LOG_EVERY_S)


async def database_unavailable(request: Request, error: Exception) -> Response:
    """The database is away (restarting, unreachable): 503 with Retry-After and no traceback; the pool
    reconnects by itself once it is back."""
    if _outage_log():
        log.warning("database unreachable (%s): answering 503 until it is back", type(error).__name__)
    return await service_error(request, Unavailable.single(DATABASE_AWAY, code="transient"))


async def server_error(request: Request, error: Exception) -> Response:
    log.error("unhandled %s on %s", type(error).__name__, request.url.path)
    return outcome_response(500, [Issue("internal error; the service logged it", None, "exception", "fatal")])


HANDLERS = {
    ServiceError: service_error,
    HTTPException: http_error,
    **dict.fromkeys(OUTAGES, database_unavailable),
    Exception: server_error,
}
