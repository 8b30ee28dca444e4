"""Shared fixtures for the JSON-Logic tests; reports conformance counts in the terminal summary."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_SCORES = pytest.StashKey[dict[str, tuple[int, int]]]()


@pytest.fixture
def record_score(request: pytest.FixtureRequest) -> Callable[[str, int, int], None]:
    """Let a test publish ``passed/total`` for a suite, shown at the end of every run."""
    scores = request.config.stash.setdefault(_SCORES, {})

    def record(suite: str, passed: int, total: int) -> None:
        scores[suite] = (passed, total)

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    scores = config.stash.get(_SCORES, {})
    if scores:
        parts = ", ".join(f"{suite} {passed}/{total}" for suite, (passed, total) in scores.items())
        terminalreporter.write_line(f"JSON-Logic conformance: {parts}")
