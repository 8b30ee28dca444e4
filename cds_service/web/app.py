"""The ASGI application: routes, middleware, error answers, and the state shared across requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from ..auth import JwtVerifier
from ..config import Settings, fetch_limits, outbound_client, patient_key_secret, trusted_clients
from ..fhir import FhirFetcher
from ..hooks import RuleRegistry
from ..hooks.quiet import CardQuieter
from ..ops.logs import configure_logging
from ..ops.request_ids import HEADER
from ..store import Database, FeedbackStore, IssuedCards, PatientKeys, QuietCards, SeenTokens
from ..store.journal import Journal
from ..types import Clock
from .errors import HANDLERS
from .middleware import RequestIdMiddleware
from .routes import ROUTES
from .state import State

SHUTDOWN_FLUSH_S = 5.0  # well inside the 10 s an orchestrator waits before it kills (docker stop -t 10)

log = logging.getLogger("cds_service")


def utc_now() -> datetime:
    return datetime.now(UTC)


async def last_flush(flushes: list[Callable[[], Awaitable[None]]]) -> None:
    """One bounded attempt to write what the buffers hold: a database that is away must neither hold the
    process past its grace period nor turn a clean stop into a crash."""
    for flush in flushes:
        try:
            await asyncio.wait_for(flush(), SHUTDOWN_FLUSH_S)
        except Exception as error:
            log.error("at shutdown, buffered rows not written: %s", type(error).__name__)


def create_app(settings: Settings | None = None, clock: Clock = utc_now) -> Starlette:
    """Build the app; plan definitions and trusted clients load now, so an invalid set stops start-up with
    its problems."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    clients = trusted_clients(settings)
    secret = patient_key_secret(settings)
    rules = RuleRegistry(settings.plandefinitions_dir, settings.parameters_file, settings.site_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, State]]:
        folder = settings.card_journal_dir
        journal = Journal(folder) if folder is not None else None
        database = Database(settings.database_url)
        await database.migrate()
        quiet = (
            CardQuieter(QuietCards(database), await PatientKeys.load(database, secret))
            if settings.quiet_cards
            else None
        )
        async with outbound_client(settings) as client:
            state = State(
                settings=settings,
                rules=rules,
                clock=clock,
                database=database,
                feedback=FeedbackStore(database),
                cards=IssuedCards(database, timedelta(days=settings.card_retention_days), journal),
                fetcher=FhirFetcher(
                    client,
                    settings.fhir_allowed_servers,
                    fetch_limits(settings),
                    require_https=not settings.fhir_allow_http,
                ),
                verifier=(
                    JwtVerifier(clients, client, replay=SeenTokens(database)) if clients is not None else None
                ),
                quiet=quiet,
            )
            await state.cards.recover()  # cards a killed process journaled and did not write
            tasks = [asyncio.create_task(state.cards.write_behind())]
            if quiet is not None:
                tasks.append(asyncio.create_task(quiet.store.write_behind()))
            if settings.reload:
                tasks.append(asyncio.create_task(rules.watch()))
            try:
                yield {"cds": state}
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await last_flush([state.cards.flush, *([quiet.store.flush] if quiet is not None else [])])
                if journal is not None:
                    journal.close()
                await database.close()

    return Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "Accept", HEADER],
                expose_headers=[HEADER],
                allow_private_network=True,  # a public https sandbox calling a service on localhost
                max_age=600,
            ),
        ],
        exception_handlers=HANDLERS,
        lifespan=lifespan,
    )
