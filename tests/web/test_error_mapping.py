"""Domain errors are mapped to HTTP once, at the web edge, and to exit codes once, in the command line:
every kind of error has exactly one status and one label, and the pipeline below knows neither."""

from __future__ import annotations

import ast
import inspect

import pytest

import cds_service.errors
import cds_service.web.errors
from cds_service.cli.errors import LABELS, label_of
from cds_service.errors import DataUnavailable, InvalidRequest, NotFound, ServiceError, TooLarge
from cds_service.web.errors import STATUS, Unauthenticated, UnsupportedMediaType, status_of

from support.hooks import ROOT


def _error_kinds(module: object) -> set[type[ServiceError]]:
    return {
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, ServiceError) and value is not ServiceError
    }


def test_every_error_kind_has_one_status() -> None:
    kinds = _error_kinds(cds_service.errors) | _error_kinds(cds_service.web.errors)
    assert set(STATUS) == kinds


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest, 400),
        (Unauthenticated, 401),
        (NotFound, 404),
        (DataUnavailable, 412),
        (TooLarge, 413),
        (UnsupportedMediaType, 415),
    ],
)
def test_the_status_of_each_kind(error: type[ServiceError], status: int) -> None:
    assert status_of(error.single("what is wrong", "where")) == status


def test_the_command_line_labels_every_domain_error() -> None:
    assert set(LABELS) == _error_kinds(cds_service.errors)
    assert (
        label_of(DataUnavailable.single("prefetch 'conditions' could not be fetched")) == "data unavailable"
    )


def test_no_http_status_is_decided_below_the_web_edge() -> None:
    """No module outside web/ builds a response or names a 4xx status next to an error."""
    offenders = []
    for path in sorted((ROOT / "cds_service").rglob("*.py")):
        relative = path.relative_to(ROOT / "cds_service")
        if relative.parts[0] in ("web", "cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and any(
                isinstance(n, ast.Constant) and isinstance(n.value, int) and 400 <= n.value < 500
                for n in ast.walk(node)
            ):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []
