"""FHIR OperationOutcome bodies for every error response: what is wrong, and where."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import Issue
from ..types import JSONObject


def operation_outcome(issues: list[Issue]) -> JSONObject:
    """Render issues as an R4 OperationOutcome, the body CDS Hooks 3.0 recommends for non-2xx answers."""
    rendered = []
    for issue in issues:
        entry: dict[str, Any] = {
            "severity": issue.severity,
            "code": issue.code,
            "diagnostics": issue.diagnostics,
        }
        if issue.location:
            entry["expression"] = [issue.location]
        rendered.append(entry)
    return {"resourceType": "OperationOutcome", "issue": rendered}


def location_of(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """Turn a pydantic error location into a FHIRPath-like path such as `context.selections[0]`."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def issues_from_validation(error: ValidationError, prefix: str = "") -> list[Issue]:
    """One issue per pydantic error, without echoing the offending input (it may hold patient data)."""
    return [
        Issue(diagnostics=item["msg"], location=location_of(item["loc"], prefix) or "$")
        for item in error.errors(include_input=False, include_url=False)
    ]
