"""The one error of outbound FHIR access: safe to log, to count and to show the client."""

from __future__ import annotations

from typing import Literal

FetchErrorKind = Literal["refused", "timeout", "network", "status", "invalid", "too-large", "version"]


class FetchError(Exception):
    """A fetch that failed; `reason` is safe to log and to put in an OperationOutcome, `kind` (a few fixed
    values) to count in metrics."""

    def __init__(self, reason: str, status: int | None = None, kind: FetchErrorKind = "refused") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.kind = kind
