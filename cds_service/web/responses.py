"""JSON responses written with orjson, and the OperationOutcome every error answer carries."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from ..errors import Issue
from ..protocol.outcome import operation_outcome


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def outcome_response(status: int, issues: list[Issue]) -> JSON:
    return JSON(operation_outcome(issues), status_code=status)
