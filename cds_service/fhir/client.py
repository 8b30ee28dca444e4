"""Outbound FHIR reads and searches for prefetch data the CDS client did not send.

The bearer token in `fhirAuthorization` is the user's, so every request is confined to an allowlisted
`fhirServer` base: no redirects, no paging links elsewhere, no cookies kept between requests, and
errors and logs carry neither the token nor URLs (which hold patient ids).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson

from ..ops.metrics import FHIR_FETCH_ERRORS, FHIR_REQUEST_LATENCY
from ..ops.request_ids import HEADER, current_request_id
from ..types import Resource
from .allowlist import agrees_with_httpx, is_allowed, normalise
from .body import ACCEPT_ENCODING, ByteBudget, read_bounded
from .errors import FetchError
from .pinned import ForbiddenAddress, UnresolvableHost
from .version import VersionCache, WrongFhirVersion, declared_version, is_r4, media_type_version

logger = logging.getLogger("cds_service.fhir")

_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


# `_count` asked of fallback searches whose template sets none. Servers page at their own default otherwise
# (HAPI: 20, so 100 resources of a type took 5 sequential round trips), and FHIR lets a server return fewer
# than `_count` but never more: HAPI, Microsoft's FHIR server (Azure) and IBM's cap a larger `_count` at their
# maximum page size (HAPI's JPA starter: 200; Azure and IBM: 1000). 200 is that HAPI maximum and the largest
# `_count` Oracle Health (Cerner) documents for Observation, so it is within every limit found. A server
# that refuses it anyway (400) is asked again at its own page size (FhirFetcher._first_page).
DEFAULT_PAGE_SIZE = 200


@dataclass(frozen=True)
class FetchLimits:
    """Bounds that keep one slow or hostile FHIR server from holding a hook call hostage."""

    timeout_s: float = 5.0
    total_timeout_s: float = 10.0
    max_pages: int = 20
    max_resources: int = 10_000
    page_size: int = DEFAULT_PAGE_SIZE  # `_count` asked of searches that do not set one; 0: the server's own
    max_response_bytes: int = 10_000_000  # decoded, per answer
    max_call_bytes: int = 30_000_000  # decoded, over all keys and pages of one hook call


_DEFAULT_LIMITS = FetchLimits()


def _is_read(relative_url: str) -> bool:
    path, has_query, _ = relative_url.partition("?")
    return not has_query and path.strip("/").count("/") == 1


@asynccontextmanager
async def _total_deadline(seconds: float) -> AsyncIterator[None]:
    """asyncio.timeout over all pages of one key, turned into a FetchError that names the limit."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise FetchError(f"total time limit of {seconds} s exceeded", kind="timeout") from None


def _next_link(bundle: Resource) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            url: str = link["url"]
            return url
    return None


def _entries(bundle: Resource) -> list[Any]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FetchError("malformed Bundle (entry is not a list)", kind="invalid")
    return entries


class FhirFetcher:
    """Fetches prefetch templates from the CDS client's FHIR server on the service's behalf, over the
    service's outbound client (config.outbound_client), whose connections go only to checked addresses."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        allowed_servers: Sequence[str],
        limits: FetchLimits = _DEFAULT_LIMITS,
        *,
        require_https: bool = False,
        versions: VersionCache | None = None,
    ) -> None:
        # A shared client would otherwise carry one user's FHIR session cookie into another user's call.
        client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self._client = client
        self._allowed = tuple(allowed_servers)
        self._limits = limits
        self._require_https = require_https
        self._versions = versions if versions is not None else VersionCache()
        self._budget: ByteBudget | None = None  # set on the copy that serves one call (fetch_many)

    def for_servers(self, allowed_servers: Sequence[str]) -> FhirFetcher:
        """The same fetcher restricted to other servers: those the authenticated client may send us.
        A shallow copy, so the shared client's cookie policy is not set again on every request."""
        restricted = copy.copy(self)
        restricted._allowed = tuple(allowed_servers)
        return restricted

    async def fetch(self, fhir_server: str, relative_url: str, access_token: str | None) -> Resource | None:
        """Run one rendered template: a resource, None for a missing read, or one merged searchset."""
        return await self._fetch_logged("-", fhir_server, relative_url, access_token)

    async def fetch_many(
        self, fhir_server: str, requests: Mapping[str, str], access_token: str | None
    ) -> dict[str, Resource | FetchError | None]:
        """Fetch all keys concurrently; a key's failure is returned as its value, not raised. A server that
        reports a FHIR version other than R4 fails every key (WrongFhirVersion): its data would read as none.
        The version is read beside the searches, and only once in a while per server (VersionCache)."""

        call = copy.copy(self)  # its own byte budget, shared by its keys and pages
        call._budget = ByteBudget(self._limits.max_call_bytes)

        async def one(key: str, relative_url: str) -> Resource | FetchError | None:
            try:
                return await call._fetch_logged(key, fhir_server, relative_url, access_token)
            except FetchError as exc:
                return exc

        async with asyncio.TaskGroup() as group:
            version = group.create_task(self._version(fhir_server, access_token))
            tasks = {key: group.create_task(one(key, url)) for key, url in requests.items()}
        found = version.result()
        if found is not None and not is_r4(found):
            FHIR_FETCH_ERRORS.labels("version").inc()
            logger.warning("fhir server refused: it reports a FHIR version other than R4")
            refused = WrongFhirVersion(found)
            return dict.fromkeys(requests, refused)
        return {key: task.result() for key, task in tasks.items()}

    async def _version(self, fhir_server: str, access_token: str | None) -> str | None:
        """The FHIR version the server reports, from the cache or its /metadata; None when it does not say,
        or cannot be asked (the searches then report why)."""

        async def read() -> str | None:
            try:
                self._check_server(fhir_server)
                metadata = await self._get(
                    f"{fhir_server.rstrip('/')}/metadata", access_token, missing_ok=True
                )
            except WrongFhirVersion as wrong:  # said by its media type
                return wrong.version
            except FetchError:
                return None
            return declared_version(metadata)

        if not is_allowed(fhir_server, self._allowed):
            return None  # nothing is asked of a server off the allowlist
        return await self._versions.version(fhir_server, read)

    async def complete(self, fhir_server: str, bundle: Resource, access_token: str | None) -> Resource:
        """Fetch the remaining pages of a prefetched Bundle (2.0 lets clients paginate prefetch)."""
        if (
            not isinstance(bundle, dict)
            or bundle.get("resourceType") != "Bundle"
            or _next_link(bundle) is None
        ):
            return bundle
        try:
            self._check_server(fhir_server)
            async with _total_deadline(self._limits.total_timeout_s):
                return await self._collect(fhir_server, bundle, access_token)
        except FetchError as exc:
            FHIR_FETCH_ERRORS.labels(exc.kind).inc()
            raise

    async def _fetch_logged(
        self, key: str, fhir_server: str, relative_url: str, access_token: str | None
    ) -> Resource | None:
        started = time.perf_counter()
        try:
            result = await self._fetch(fhir_server, relative_url, access_token)
        except FetchError as exc:
            FHIR_FETCH_ERRORS.labels(exc.kind).inc()
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.warning(
                "fhir fetch failed key=%s status=%s reason=%s elapsed_ms=%.0f",
                key,
                exc.status,
                exc.reason,
                elapsed_ms,
            )
            raise
        if result is None:
            count = 0
        elif result["resourceType"] == "Bundle":
            count = len(result.get("entry", ()))
        else:
            count = 1
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "fhir fetch key=%s found=%s resources=%d elapsed_ms=%.0f",
            key,
            result is not None,
            count,
            elapsed_ms,
        )
        return result

    async def _fetch(self, fhir_server: str, relative_url: str, access_token: str | None) -> Resource | None:
        self._check_server(fhir_server)
        url = f"{fhir_server.rstrip('/')}/{relative_url.lstrip('/')}"
        if not is_allowed(url, [fhir_server]):
            raise FetchError("request URL is malformed or leaves fhirServer")
        read = _is_read(relative_url)
        async with _total_deadline(self._limits.total_timeout_s):
            if read:
                return await self._get(url, access_token, missing_ok=True)
            resource = await self._first_page(url, access_token)
            if resource is None or resource["resourceType"] != "Bundle":
                raise FetchError("search did not return a Bundle", kind="invalid")
            return await self._collect(fhir_server, resource, access_token)

    async def _first_page(self, url: str, access_token: str | None) -> Resource | None:
        """A search's first page, at the configured page size unless its template sets `_count`; a server
        that answers 400 to the size added here (not the template's) is asked again at its own size."""
        size = self._limits.page_size
        if not size or re.search(r"[?&]_count=", url):
            return await self._get(url, access_token, missing_ok=False)
        try:
            return await self._get(
                f"{url}{'&' if '?' in url else '?'}_count={size}", access_token, missing_ok=False
            )
        except FetchError as exc:
            if exc.status != 400:
                raise
        logger.warning("fhir server refused _count=%d (400); searching again at its own page size", size)
        return await self._get(url, access_token, missing_ok=False)

    def _check_server(self, fhir_server: str) -> None:
        """Refuse before connecting: not allowlisted, or plain http when https is required. The address is
        checked where the connection is made (fhir.pinned), so that a second lookup cannot differ."""
        if not is_allowed(fhir_server, self._allowed):
            raise FetchError("server not allowlisted")
        if "?" in fhir_server or "#" in fhir_server:
            raise FetchError("fhirServer must not carry a query or fragment")
        base = normalise(fhir_server)
        assert base is not None  # is_allowed passed
        if self._require_https and base.scheme != "https":
            raise FetchError("fhirServer must use https")

    async def _collect(self, fhir_server: str, first: Resource, access_token: str | None) -> Resource:
        """Follow next links (only within fhirServer) and merge the pages into one searchset."""
        limits = self._limits
        entries = list(_entries(first))
        pages, page, seen = 1, first, set()
        while True:
            if len(entries) > limits.max_resources:
                raise FetchError(f"too many resources (>{limits.max_resources})", kind="too-large")
            link = _next_link(page)
            if link is None:
                break
            if pages >= limits.max_pages:
                raise FetchError(f"too many pages (>{limits.max_pages})", kind="too-large")
            next_url = urljoin(fhir_server.rstrip("/") + "/", link)
            if not is_allowed(next_url, [fhir_server]):
                raise FetchError("next link points outside fhirServer", kind="invalid")
            if next_url in seen:
                raise FetchError("paging loop (a next link repeats)", kind="invalid")
            seen.add(next_url)
            next_page = await self._get(next_url, access_token, missing_ok=False)
            if next_page is None or next_page["resourceType"] != "Bundle":
                raise FetchError("next page is not a Bundle", kind="invalid")
            page = next_page
            entries.extend(_entries(page))
            pages += 1
        if pages == 1:
            return first
        logger.debug("fhir paging pages=%d resources=%d", pages, len(entries))
        merged: Resource = {"resourceType": "Bundle", "type": first.get("type", "searchset")}
        if "total" in first:
            merged["total"] = first["total"]
        if entries:
            merged["entry"] = entries
        return merged

    async def _get(self, url: str, access_token: str | None, *, missing_ok: bool) -> Resource | None:
        """One GET; returns the parsed resource, or None for 404/410 when the caller allows it."""
        if not agrees_with_httpx(url):
            raise FetchError("request URL rejected")
        headers = {"Accept": "application/fhir+json", "Accept-Encoding": ACCEPT_ENCODING}
        request_id = current_request_id.get()
        if request_id is not None:
            headers[HEADER] = request_id
        if access_token is not None:
            if not _TOKEN_CHARS.fullmatch(access_token):
                raise FetchError("invalid access token")
            headers["Authorization"] = f"Bearer {access_token}"
        timeout = self._limits.timeout_s
        started = time.perf_counter()
        try:
            async with (
                asyncio.timeout(timeout),
                self._client.stream(
                    "GET", url, headers=headers, follow_redirects=False, timeout=httpx.Timeout(timeout)
                ) as response,
            ):
                return await self._answer(response, started, missing_ok=missing_ok)
        except ForbiddenAddress:
            raise FetchError("FHIR server address not allowed (link-local or metadata)") from None
        except UnresolvableHost:
            raise FetchError("could not resolve FHIR server host", kind="network") from None
        except (TimeoutError, httpx.TimeoutException):
            FHIR_REQUEST_LATENCY.labels("timeout").observe(time.perf_counter() - started)
            raise FetchError(f"timed out after {timeout} s", kind="timeout") from None
        except httpx.HTTPError as exc:
            FHIR_REQUEST_LATENCY.labels("network").observe(time.perf_counter() - started)
            reason = (
                "could not connect to FHIR server"
                if isinstance(exc, httpx.ConnectError)
                else f"HTTP error talking to FHIR server ({type(exc).__name__})"
            )
            raise FetchError(reason, kind="network") from None

    async def _answer(self, response: httpx.Response, started: float, *, missing_ok: bool) -> Resource | None:
        """The status decides first; only a 200's body is read, within the byte limits."""
        status = response.status_code
        elapsed = time.perf_counter() - started
        outcome = "ok" if status == 200 else "not-found" if status in (404, 410) else "status"
        FHIR_REQUEST_LATENCY.labels(outcome).observe(elapsed)
        logger.debug("fhir response status=%d elapsed_ms=%.0f", status, elapsed * 1000)
        if missing_ok and status in (404, 410):
            return None
        if response.is_redirect:
            raise FetchError(
                f"FHIR server answered {status} (redirects are not followed)", status, kind="status"
            )
        if status != 200:
            raise FetchError(f"FHIR server answered {status}", status, kind="status")
        declared = media_type_version(response.headers.get("content-type"))
        if declared is not None and not is_r4(declared):
            raise WrongFhirVersion(declared)
        encoding = response.headers.get("content-encoding", "")
        body = await read_bounded(
            response.aiter_raw(), encoding, self._limits.max_response_bytes, self._budget
        )
        return _parse(body)


def _parse(body: bytes) -> Resource:
    try:
        resource = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FetchError("FHIR server sent a body that is not JSON", 200, kind="invalid") from None
    if not isinstance(resource, dict):
        raise FetchError("FHIR server sent JSON that is not a FHIR resource", 200, kind="invalid")
    resource_type = resource.get("resourceType")
    if not (isinstance(resource_type, str) and _RESOURCE_TYPE.fullmatch(resource_type)):
        raise FetchError("FHIR server sent JSON that is not a FHIR resource", 200, kind="invalid")
    if resource_type == "OperationOutcome":
        raise FetchError("FHIR server answered with an OperationOutcome", 200, kind="invalid")
    found: Resource = resource
    return found
