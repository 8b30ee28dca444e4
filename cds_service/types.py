"""Type aliases shared across the package, declared once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

Resource = dict[str, Any]
"""A FHIR resource as decoded JSON: validated only in the elements the rules read (see `record.shape`)."""

JSONObject = dict[str, Any]
"""Any decoded JSON object: a request body, a card, an OperationOutcome."""

Evaluator = Callable[[Any], Any]
"""A compiled JSON-Logic rule: `data -> value`."""

Clock = Callable[[], datetime]
"""Now, as an aware datetime; tests freeze it."""
