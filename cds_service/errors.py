"""What can go wrong with a caller's input, said once and in words, raised anywhere below the web edge.

Each error carries issues (what is wrong and where, as a path into the request) and no HTTP status: the web
edge maps the error type to a status and an OperationOutcome (`web.errors`), the CLI to an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem with the client's input; `location` is a dotted path into the request body."""

    diagnostics: str
    location: str | None = None
    code: str = "invalid"
    severity: str = "error"


class ServiceError(Exception):
    """A request the service cannot answer as asked; `issues` say why, without patient data."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(issue.diagnostics for issue in issues))
        self.issues = issues

    @classmethod
    def single(cls, diagnostics: str, location: str | None = None, code: str = "invalid") -> Self:
        return cls([Issue(diagnostics, location, code)])


class InvalidRequest(ServiceError):
    """The body is malformed or breaks the CDS Hooks or FHIR rules the service relies on."""


class NotFound(ServiceError):
    """No such CDS service or plan definition."""


class DataUnavailable(ServiceError):
    """Data the rules need could be had neither from prefetch nor from the FHIR server."""


class TooLarge(ServiceError):
    """The body, or the number of FHIR resources in one call, is over the configured limit."""


class Exhausted(ServiceError):
    """Evaluating the call ran out of memory or stack: answered as a failure, never as a 200 whose cards
    quietly leave plans out."""


class Unavailable(ServiceError):
    """What the answer depends on (the service's database) cannot be reached now: a failure the caller may
    retry shortly, not a defect."""
