"""Which FHIR version an EHR's server speaks: the rules read R4, and data of another version parses into
nothing they can use, so a call against such a server would answer an empty, wrong `{"cards": []}`.

The version is read once per base URL from its CapabilityStatement (`<base>/metadata`, `fhirVersion`) and
kept for a while in a small cache, so a hook call does not pay a /metadata request; a server that does not
say keeps being served as before.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from .allowlist import Base, normalise
from .errors import FetchError

_R4 = re.compile(r"4\.0(?:\.\d+)?(?:-\w+)?")
_PRINTABLE = re.compile(r"[0-9A-Za-z.+-]{1,24}")
CAPABILITY_TYPES = frozenset({"CapabilityStatement", "Conformance"})  # DSTU2 names it Conformance


class WrongFhirVersion(FetchError):
    """The FHIR server speaks a version other than R4; `version` is as it said it (or "unrecognised")."""

    def __init__(self, version: str) -> None:
        shown = version if _PRINTABLE.fullmatch(version) else "an unrecognised version"
        super().__init__(
            f"the FHIR server reports FHIR version {shown}; this service needs FHIR R4 (4.0.x)",
            kind="version",
        )
        self.version = shown


def is_r4(version: str) -> bool:
    return _R4.fullmatch(version.strip()) is not None


def declared_version(metadata: Any) -> str | None:
    """`fhirVersion` of a CapabilityStatement (or DSTU2 Conformance), None when it does not say."""
    if not isinstance(metadata, dict) or metadata.get("resourceType") not in CAPABILITY_TYPES:
        return None
    version = metadata.get("fhirVersion")
    return version if isinstance(version, str) and version.strip() else None


def media_type_version(content_type: str | None) -> str | None:
    """The `fhirVersion` parameter of a FHIR media type (`application/fhir+json; fhirVersion=3.0`)."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "fhirversion" and value.strip().strip('"'):
            return value.strip().strip('"')
    return None


class VersionCache:
    """The FHIR version of each base URL seen lately (None: the server did not say), at most
    `max_entries` of them, each for `ttl_s` seconds. Concurrent first calls may each read /metadata once."""

    def __init__(
        self, max_entries: int = 256, ttl_s: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[Base, tuple[float, str | None]] = OrderedDict()
        self._max_entries = max_entries
        self._ttl_s = ttl_s
        self._clock = clock

    async def version(self, fhir_server: str, read: Callable[[], Awaitable[str | None]]) -> str | None:
        key = normalise(fhir_server)
        if key is None:
            return None
        cached = self._entries.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        found = await read()
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + self._ttl_s, found)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)  # the one read longest ago
        return found
