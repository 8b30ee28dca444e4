"""What every request handler shares, built in one place when the app starts and typed end to end."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from ..auth import JwtVerifier, VerifiedClient
from ..config import Settings
from ..fhir import FhirFetcher
from ..hooks import RuleRegistry
from ..hooks.quiet import CardQuieter
from ..store import Database, FeedbackStore, IssuedCards
from ..types import Clock
from .smart_access import SmartAccess


@dataclass(frozen=True, slots=True)
class State:
    """The app's shared resources; the lifespan makes it and puts it in every request's state as `cds`."""

    settings: Settings
    rules: RuleRegistry
    clock: Clock
    database: Database
    feedback: FeedbackStore
    cards: IssuedCards
    fetcher: FhirFetcher
    verifier: JwtVerifier | None  # None with CDS_AUTH=off
    quiet: CardQuieter | None  # None with CDS_QUIET_CARDS=false
    smart: SmartAccess = field(default_factory=SmartAccess)  # the capture app's recently checked tokens


def state(request: Request) -> State:
    shared: State = request.state.cds
    return shared


def caller(request: Request) -> VerifiedClient | None:
    """The verified CDS client of this request (None before authentication, or with CDS_AUTH=off)."""
    client: VerifiedClient | None = request.state.client
    return client


def patient_scope(request: Request) -> str:
    """Whose patient ids a request speaks of: an id is unique only within one EHR (issuer and tenant)."""
    client = caller(request)
    return "" if client is None else f"{client.iss}|{client.tenant or ''}"


def fetcher_for(request: Request) -> FhirFetcher:
    """The FHIR fetcher for this caller: restricted to the FHIR servers its trust entry lists, if any."""
    client = caller(request)
    fetcher = state(request).fetcher
    return fetcher.for_servers(client.client.fhir_servers) if client is not None else fetcher
