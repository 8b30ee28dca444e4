"""Where a resource of the record came from, so that malformed data found only when a rule reads it is still
refused where whoever sent it can fix it: the client's prefetch (400 at the element), or the FHIR server's
answer to one of our searches (412 naming the prefetch key)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DataUnavailable, InvalidRequest, Issue, ServiceError
from .shape import TypeErrors


@dataclass(frozen=True, slots=True)
class Origin:
    """One prefetch key's value: sent by the client, or fetched by us from the FHIR server."""

    key: str
    fetched: bool = False

    def malformed(self, index: int | None, problems: TypeErrors) -> ServiceError:
        """The error for `problems` (path in the resource, what is wrong) of the resource at `index` of
        the key's Bundle (None: the value is the resource itself)."""
        inside = "" if index is None else f".entry[{index}].resource"
        if self.fetched:
            path, problem = problems[0]
            return DataUnavailable.single(
                f"prefetch '{self.key}' could not be fetched from the FHIR server: FHIR server sent "
                f"malformed data (response{inside}.{path}: {problem})",
                f"prefetch.{self.key}",
                "not-found",
            )
        return InvalidRequest(
            [
                Issue(f"{problem} (FHIR R4)", f"prefetch.{self.key}{inside}.{path}")
                for path, problem in problems
            ]
        )


UNNAMED = Origin("record")  # resources handed to the record directly (tests, tools), reported as sent
