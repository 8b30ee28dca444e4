"""How the command line reports errors: plan-definition problems with file and path, and the service's
domain errors as a short label and an exit code."""

from __future__ import annotations

import sys

from ..errors import (
    DataUnavailable,
    Exhausted,
    InvalidRequest,
    NotFound,
    ServiceError,
    TooLarge,
    Unavailable,
)
from ..plans.errors import RuleSetError

REQUEST_FAILED = 2  # the exit code of every refused request, with its OperationOutcome on stdout

LABELS: dict[type[ServiceError], str] = {
    InvalidRequest: "invalid request",
    NotFound: "not found",
    DataUnavailable: "data unavailable",
    TooLarge: "too large",
    Exhausted: "out of memory",
    Unavailable: "database unreachable",
}


def label_of(error: ServiceError) -> str:
    return next((label for kind, label in LABELS.items() if isinstance(error, kind)), "refused")


def report_problems(error: RuleSetError) -> int:
    """Every problem on stderr, then how many; the exit code of an invalid plan-definition folder."""
    for problem in error.problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(error.problems)} problem(s) found", file=sys.stderr)
    return 1
