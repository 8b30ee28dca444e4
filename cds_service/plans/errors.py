"""Problems found in plan definitions, each with the file, the JSON path and the reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" if self.path else f"{self.file}: {self.message}"


class RuleSetError(Exception):
    """The plan-definition folder has errors; the previous rule set (if any) keeps serving."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in plan definitions")
        self.problems = problems
