"""Gather the patient data a service needs: prefetch as given, every missing key fetched from the EHR.

Per key, a prefetch value is used as sent (a resource, or a Bundle whose remaining pages we fetch), `null`
means "no data", and a missing key, an OperationOutcome or an unusable value means "not satisfied", so we
fetch it from `fhirServer` ourselves, all keys concurrently. Only when a key can be had neither way is the
answer 412, naming each key and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from .fhir import FetchError, FhirFetcher, TemplateError, render, user_tokens
from .protocol.outcome import ClientError, Issue
from .protocol.request import ParsedRequest
from .record import resources_of
from .shape import problems

log = logging.getLogger("cds_service.prefetch")


def _usable(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("resourceType"), str)
        and value["resourceType"] != "OperationOutcome"
    )


def _has_next(bundle: dict[str, Any]) -> bool:
    return bundle.get("resourceType") == "Bundle" and any(
        isinstance(link, dict) and link.get("relation") == "next" for link in bundle.get("link") or ()
    )


class Unavailable(ClientError):
    """412: data the rules need could be had neither from prefetch nor from the FHIR server."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__(
            412,
            [
                Issue(diagnostics=f"prefetch '{key}' {reason}", location=f"prefetch.{key}", code="not-found")
                for key, reason in reasons.items()
            ],
        )


def _issues(value: dict[str, Any], where: str) -> Iterator[tuple[str, str]]:
    """(location, problem) for every element of the wrong JSON type in a prefetch value or a page."""
    if value.get("resourceType") != "Bundle":
        for path, problem in problems(value):
            yield f"{where}.{path}", problem
        return
    if not isinstance(value.get("entry", []), list):
        yield f"{where}.entry", "must be an array"
        return
    for index, resource in enumerate(resources_of(value)):
        for path, problem in problems(resource):
            yield f"{where}.entry[{index}].resource.{path}", problem


def _checked_given(key: str, value: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a prefetch value the client sent; 400 naming each element of the wrong type."""
    found = [
        Issue(f"{problem} (FHIR R4)", location) for location, problem in _issues(value, f"prefetch.{key}")
    ]
    if found:
        raise ClientError(400, found)
    return resources_of(value)


def _checked_fetched(value: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources the FHIR server sent; malformed ones make the key unavailable."""
    for location, problem in _issues(value, "response"):
        raise FetchError(f"FHIR server sent malformed data ({location}: {problem})", kind="invalid")
    return resources_of(value)


async def gather(
    templates: dict[str, str], request: ParsedRequest, fetcher: FhirFetcher | None
) -> tuple[list[dict[str, Any]], int]:
    """All resources for the service's prefetch keys, and how many keys had to be fetched."""
    envelope = request.envelope
    given = envelope.prefetch or {}
    token = envelope.fhirAuthorization.access_token if envelope.fhirAuthorization else None
    resources: list[dict[str, Any]] = []
    to_fetch: dict[str, str] = {}
    to_complete: dict[str, dict[str, Any]] = {}
    reasons: dict[str, str] = {}
    for key, template in templates.items():
        if key in given and given[key] is None:
            continue
        value = given.get(key)
        if _usable(value):
            if _has_next(value):
                to_complete[key] = value
            else:
                resources.extend(_checked_given(key, value))
            continue
        try:
            to_fetch[key] = render(template, envelope.context, user_tokens(request.context.userId))
        except TemplateError as error:
            reasons[key] = f"cannot be fetched: {error}"
    if (to_fetch or to_complete) and (envelope.fhirServer is None or fetcher is None):
        for key in [*to_fetch, *to_complete]:
            reasons[key] = "was not provided and cannot be fetched: the request has no fhirServer"
        raise Unavailable(reasons)
    if reasons:
        raise Unavailable(reasons)
    if to_fetch or to_complete:
        assert fetcher is not None and envelope.fhirServer is not None
        server = envelope.fhirServer
        fetched, *completed = await asyncio.gather(
            fetcher.fetch_many(server, to_fetch, token),
            *(fetcher.complete(server, bundle, token) for bundle in to_complete.values()),
            return_exceptions=True,
        )
        if isinstance(fetched, BaseException):
            raise fetched
        for key, result in [*fetched.items(), *zip(to_complete, completed, strict=True)]:
            if isinstance(result, BaseException) and not isinstance(result, FetchError):
                raise result
            try:
                if isinstance(result, FetchError):
                    raise result
                if result is not None:
                    resources.extend(_checked_fetched(result))
            except FetchError as error:
                reasons[key] = f"could not be fetched from the FHIR server: {error.reason}"
    if reasons:
        log.warning("prefetch unavailable for keys %s", sorted(reasons))
        raise Unavailable(reasons)
    return resources, len(to_fetch) + len(to_complete)
