"""Who is calling: the CDS client's signed JWT on every discovery, service and feedback call.

With `CDS_AUTH=off` (development only) nobody is verified: a warning at start-up says so, and every call's
audit line is logged as a WARNING with `iss=UNVERIFIED`. The FHIR servers the service may then contact are
those of `CDS_FHIR_ALLOWED_SERVERS`.
"""

from __future__ import annotations

import logging

from starlette.requests import Request

from ..auth import AuthError
from .errors import Unauthenticated
from .state import state

log = logging.getLogger("cds_service.auth")


def audience(base: str, request: Request) -> str:
    """The URL the client called, as it knows it: `CDS_PUBLIC_BASE_URL` + path. Never the Host or forwarded
    headers, which the caller chooses (a token signed for another service would otherwise be replayable)."""
    return base.rstrip("/") + request.url.path


async def authenticate(request: Request) -> None:
    """Set `request.state.client` to the verified client, or answer 401 without saying why."""
    current = state(request)
    verifier, base = current.verifier, current.settings.public_base_url
    if verifier is None:
        return
    try:
        if base is None:  # start-up refuses jwt without a public base URL; fail closed all the same
            raise AuthError("no public base URL to check the audience against")
        request.state.client = await verifier.verify(
            request.headers.get("authorization"), audience(base, request)
        )
    except AuthError as error:
        log.warning("rejected %s %s: %s", request.method, request.url.path, error.reason)
        raise Unauthenticated.single("authentication failed", None, "login") from None
