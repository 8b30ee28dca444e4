"""Access for the SMART capture app: the EHR's access token, checked by the EHR's own FHIR server.

The app runs in the clinician's browser and holds no CDS client JWT, only the access token the EHR's
authorization server issued for the EHR's FHIR server. It sends that token (`Authorization: Bearer …`) and
the server it is for (`X-FHIR-Server`, the launch's `iss`). The service contacts that server only if a hook
call's `fhirServer` could name it (CDS_FHIR_ALLOWED_SERVERS, and with CDS_AUTH=jwt every trusted client's),
through the same client (https, timeouts, no redirects, no link-local addresses), and reads the response's
patient with the token: if the server shows that patient to the token, the user may record for them.
Positive answers are kept a few minutes under a hash of token, server and patient; the token itself is
never kept, logged or sent anywhere else.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..auth import JwtVerifier
from ..config import Settings
from ..errors import InvalidRequest
from ..fhir import FetchError, FhirFetcher, is_allowed
from .errors import BadGateway, Forbidden, Unauthenticated

log = logging.getLogger("cds_service.auth")

FHIR_SERVER = "X-FHIR-Server"
SUBJECT = "QuestionnaireResponse.subject"
PATIENT = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")
BEARER = re.compile(r"Bearer ([\x21-\x7e]{1,8192})", re.IGNORECASE)  # RFC 6750 b64token, bounded
REFUSED_BY_SERVER = frozenset({401, 403})


@dataclass(frozen=True, slots=True)
class SmartCaller:
    """A request that names a FHIR server and carries a token for it; the token never shows in a repr."""

    fhir_server: str
    token: str = field(repr=False)


def app_servers(settings: Settings, verifier: JwtVerifier | None) -> tuple[str, ...]:
    """The FHIR servers a SMART app may name: those a hook call's `fhirServer` may be."""
    trusted = verifier.fhir_servers() if verifier is not None else frozenset()
    return tuple(sorted(set(settings.fhir_allowed_servers) | trusted))


def smart_caller(headers: Mapping[str, str], allowed: Sequence[str]) -> SmartCaller | None:
    """The SMART app's server and token (None without `X-FHIR-Server`: a CDS client's call). Refused before
    anything is read or contacted: a server off the allowlist (403), a missing or malformed token (401)."""
    fhir_server = headers.get(FHIR_SERVER)
    if fhir_server is None:
        return None
    if not is_allowed(fhir_server, allowed):
        log.warning("refused a SMART app: its %s is not an allowed FHIR server", FHIR_SERVER)
        raise Forbidden.single(
            f"{FHIR_SERVER} names a FHIR server this service may not contact",
            f"http.{FHIR_SERVER}",
            "forbidden",
        )
    token = BEARER.fullmatch(headers.get("authorization") or "")
    if token is None:
        raise Unauthenticated.single(
            f"with {FHIR_SERVER}, send the SMART access token as 'Authorization: Bearer <token>'",
            "http.Authorization",
            "login",
        )
    return SmartCaller(fhir_server, token.group(1))


def patient_of(response: dict[str, Any]) -> str:
    """The id of the patient a response is about; the app may record for a patient only (400 otherwise)."""
    subject = response.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    found = PATIENT.fullmatch(reference) if isinstance(reference, str) else None
    if found is None:
        raise InvalidRequest.single("the subject must be a reference 'Patient/<id>' to the patient", SUBJECT)
    return found.group(1)


class SmartAccess:
    """Checks a SMART app's token against its FHIR server, remembering recent positive answers (one per app,
    bounded, by hash only)."""

    def __init__(
        self, ttl_s: float = 300.0, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._allowed: OrderedDict[str, float] = OrderedDict()  # key -> when it stops being trusted

    async def authorise(self, fetcher: FhirFetcher, caller: SmartCaller, response: dict[str, Any]) -> None:
        """Return if the FHIR server shows the response's patient to the token; raise why not otherwise."""
        patient = patient_of(response)
        key = hashlib.sha256("\n".join((caller.token, caller.fhir_server, patient)).encode()).hexdigest()
        now = self._clock()
        if self._allowed.get(key, 0.0) > now:
            return
        self._allowed.pop(key, None)
        await _read_patient(fetcher.for_servers([caller.fhir_server]), caller, patient)
        self._allowed[key] = now + self._ttl_s
        while len(self._allowed) > self._max_entries:
            self._allowed.popitem(last=False)


async def _read_patient(fetcher: FhirFetcher, caller: SmartCaller, patient: str) -> None:
    try:
        found = await fetcher.fetch(caller.fhir_server, f"Patient/{patient}", caller.token)
    except FetchError as error:
        if error.status in REFUSED_BY_SERVER:
            log.warning("refused a SMART app: its FHIR server answered %s to its token", error.status)
            raise Unauthenticated.single(
                "the FHIR server did not accept the access token", "http.Authorization", "login"
            ) from None
        if error.kind == "refused":  # never contacted: plain http, or an address no FHIR server has
            raise Forbidden.single(
                f"{FHIR_SERVER} refused: {error.reason}", f"http.{FHIR_SERVER}", "forbidden"
            ) from None
        raise BadGateway.single(
            f"could not check the access token with the FHIR server: {error.reason}", None, "transient"
        ) from None
    if found is None or found.get("resourceType") != "Patient" or found.get("id") != patient:
        log.warning("refused a SMART app: its FHIR server shows it no such patient")
        raise Forbidden.single(
            "the FHIR server does not show this patient to the access token", SUBJECT, "forbidden"
        )
