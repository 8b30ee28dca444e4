"""One submit, one set of records: the identifiers and conditional creates that make a transaction idempotent.

A response the app identifies once per form (`QuestionnaireResponse.identifier`) is created only if none with
that identifier exists, and every resource extracted from it carries an identifier derived from the
response's and from where in the response it came from (linkIds, repetitions and answer positions), with its
own conditional create. Posting the same Bundle twice, or extracting the same response again, then creates
nothing the second time.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import quote

URI = "urn:ietf:rfc:3986"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "http://postfusion-cds.org/fhir/QuestionnaireResponse/$extract")
_SEARCH_SPECIALS = re.compile(r"([\\|,$])")  # escaped with a backslash in a FHIR search value


def derived(response_identifier: dict[str, str], source: str) -> dict[str, str]:
    """The identifier of the resource extracted at `source` from the response with `response_identifier`."""
    name = f"{response_identifier['system']}|{response_identifier['value']}#{source}"
    return {"system": URI, "value": f"urn:uuid:{uuid.uuid5(NAMESPACE, name)}"}


def if_none_exist(identifier: dict[str, str]) -> str:
    """`Bundle.entry.request.ifNoneExist` matching exactly that identifier: a token search, its system and
    value escaped as FHIR search says and percent-encoded for the query string."""
    system, value = (
        quote(_SEARCH_SPECIALS.sub(r"\\\1", identifier[k]), safe=":/") for k in ("system", "value")
    )
    return f"identifier={system}|{value}"


def identifier_of(response: dict[str, Any]) -> dict[str, str] | None:
    """The response's identifier as {system, value} (None if it has none); ValueError if it lacks either."""
    given = response.get("identifier")
    if given is None:
        return None
    if not isinstance(given, dict) or not all(
        isinstance(given.get(key), str) and given[key] for key in ("system", "value")
    ):
        raise ValueError(
            "the identifier needs a system and a value (the transaction creates one response per identifier)"
        )
    return {"system": given["system"], "value": given["value"]}
