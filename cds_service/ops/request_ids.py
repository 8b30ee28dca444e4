"""The id of the call being served, readable anywhere below the web edge (logs, outbound FHIR requests)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{8,128}")

current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def accepted_or_new(given: str) -> str:
    """The caller's id when it is a plain token (8-128 of `A-Za-z0-9._:-`), otherwise a new one."""
    return given if _ACCEPTED.fullmatch(given) else uuid.uuid4().hex
