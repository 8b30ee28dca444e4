"""Gather the patient data a service needs: prefetch as given, every missing key fetched from the EHR.

Per key, a prefetch value is used as sent (a resource, or a Bundle whose remaining pages we fetch), `null`
means "no data", and a missing key, an OperationOutcome or an unusable value means "not satisfied", so we
fetch it from `fhirServer` ourselves, all keys concurrently. Only when a key can be had neither way is the
call refused (DataUnavailable), naming each key and why.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeGuard

from ..errors import DataUnavailable, InvalidRequest, Issue
from ..fhir import FetchError, FhirFetcher, TemplateError, expand, user_tokens
from ..record import Origin
from ..types import Resource
from .intake import ParsedRequest

log = logging.getLogger("cds_service.prefetch")


def _usable(value: Any) -> TypeGuard[Resource]:
    return (
        isinstance(value, dict)
        and isinstance(value.get("resourceType"), str)
        and value["resourceType"] != "OperationOutcome"
    )


def _has_next(bundle: Resource) -> bool:
    return bundle.get("resourceType") == "Bundle" and any(
        isinstance(link, dict) and link.get("relation") == "next" for link in bundle.get("link") or ()
    )


def _unavailable(reasons: dict[str, str]) -> DataUnavailable:
    return DataUnavailable(
        [
            Issue(f"prefetch '{key}' {reason}", f"prefetch.{key}", "not-found")
            for key, reason in reasons.items()
        ]
    )


def _given(key: str, value: Resource) -> tuple[Origin, Resource]:
    """A prefetch value the client sent, as the record takes it; its resources are checked when a rule
    reads them, but a Bundle whose `entry` is not an array is refused at once."""
    if value.get("resourceType") == "Bundle" and type(value.get("entry", [])) is not list:
        raise InvalidRequest.single("must be an array (FHIR R4)", f"prefetch.{key}.entry")
    return Origin(key), value


def resource_count(value: Resource) -> int:
    """How many resources a prefetch value holds, for the per-call limit."""
    entries = value.get("entry") if value.get("resourceType") == "Bundle" else None
    return len(entries) if type(entries) is list else 1


async def gather(
    templates: dict[str, str], request: ParsedRequest, fetcher: FhirFetcher | None
) -> tuple[list[tuple[Origin, Resource]], int]:
    """The value of each of the service's prefetch keys (a Bundle or a resource) with its origin, and how
    many keys had to be fetched."""
    envelope = request.envelope
    given = envelope.prefetch or {}
    token = envelope.fhirAuthorization.access_token if envelope.fhirAuthorization else None
    values: list[tuple[Origin, Resource]] = []
    to_fetch: dict[str, str] = {}
    to_complete: dict[str, Resource] = {}
    reasons: dict[str, str] = {}
    for key, template in templates.items():
        if key in given and given[key] is None:
            continue
        value = given.get(key)
        if _usable(value):
            if _has_next(value):
                to_complete[key] = value
            else:
                values.append(_given(key, value))
            continue
        try:
            to_fetch[key] = expand(template, envelope.context, user_tokens(request.context.userId))
        except TemplateError as error:
            reasons[key] = f"cannot be fetched: {error}"
    server = envelope.fhirServer
    if (to_fetch or to_complete) and (server is None or fetcher is None):
        for key in [*to_fetch, *to_complete]:
            reasons[key] = "was not provided and cannot be fetched: the request has no fhirServer"
    if reasons:
        raise _unavailable(reasons)
    if server is not None and fetcher is not None and (to_fetch or to_complete):
        fetched, *completed = await asyncio.gather(
            fetcher.fetch_many(server, to_fetch, token),
            *(fetcher.complete(server, bundle, token) for bundle in to_complete.values()),
            return_exceptions=True,
        )
        if isinstance(fetched, BaseException):
            raise fetched
        results: list[tuple[str, Resource | FetchError | BaseException | None]] = [
            *fetched.items(),
            *zip(to_complete, completed, strict=True),
        ]
        for key, result in results:
            if isinstance(result, FetchError):
                reasons[key] = f"could not be fetched from the FHIR server: {result.reason}"
            elif isinstance(result, BaseException):
                raise result
            elif result is not None:
                values.append((Origin(key, fetched=True), result))
    if reasons:
        log.warning("prefetch unavailable for keys %s", sorted(reasons))
        raise _unavailable(reasons)
    return values, len(to_fetch) + len(to_complete)
