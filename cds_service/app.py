"""The ASGI application: routes, CORS, error bodies, and the resources shared across requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response

from .auth import JwtVerifier, TrustedClient, load_trusted_clients
from .bodies import outcome_response
from .config import Settings, fetch_limits
from .fhir import FhirFetcher
from .logs import configure_logging
from .plans.registry import RuleRegistry
from .protocol.outcome import ClientError, Issue
from .request_id import HEADER, RequestIdMiddleware
from .routes import ROUTES
from .store import Database, FeedbackStore, IssuedCards, SeenTokens

log = logging.getLogger("cds_service")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def _client_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ClientError)
    return outcome_response(error.status, error.issues)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    code = {404: "not-found", 405: "not-supported"}.get(error.status_code, "processing")
    messages = {404: f"no route for {request.url.path}", 405: f"method {request.method} is not allowed here"}
    response = outcome_response(
        error.status_code, [Issue(messages.get(error.status_code, str(error.detail)), "url", code)]
    )
    if error.headers:
        response.headers.update(error.headers)
    return response


async def _server_error(request: Request, error: Exception) -> Response:
    log.error("unhandled %s on %s", type(error).__name__, request.url.path)
    return outcome_response(500, [Issue("internal error; the service logged it", None, "exception", "fatal")])


def trusted_clients(settings: Settings) -> list[TrustedClient] | None:
    """The trusted clients for CDS_AUTH=jwt (None when auth is off); start-up fails without them."""
    if settings.auth == "off":
        log.warning("CDS_AUTH=off: callers are NOT verified; use this for local development only")
        return None
    if settings.trusted_clients is None:
        raise ValueError("CDS_AUTH=jwt needs CDS_TRUSTED_CLIENTS (a file of trusted clients); see the README")
    return load_trusted_clients(settings.trusted_clients)


def create_app(settings: Settings | None = None, clock: Clock = utc_now) -> Starlette:
    """Build the app; plan definitions load now, so an invalid set stops start-up with its problems."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    clients = trusted_clients(settings)
    rules = RuleRegistry(settings.plandefinitions_dir, settings.parameters_file)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        database = Database(settings.database_url)
        await database.migrate()
        limits = fetch_limits(settings)
        async with httpx.AsyncClient(follow_redirects=False) as client:
            app.state.database = database
            app.state.feedback = FeedbackStore(database)
            app.state.cards = IssuedCards(database, timedelta(days=settings.card_retention_days))
            app.state.fetcher = FhirFetcher(
                client, settings.fhir_allowed_servers, limits, require_https=not settings.fhir_allow_http
            )
            app.state.verifier = (
                JwtVerifier(clients, client, replay=SeenTokens(database)) if clients is not None else None
            )
            tasks = [asyncio.create_task(app.state.cards.write_behind())]
            if settings.reload:
                tasks.append(asyncio.create_task(rules.watch()))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                try:
                    await app.state.cards.flush()
                finally:
                    await database.close()

    app = Starlette(
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
        exception_handlers={ClientError: _client_error, HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rules = rules
    app.state.clock = clock
    return app
