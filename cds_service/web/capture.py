"""The capture app at `/capture/`: a SMART on FHIR app, launched from a card's link, that records in the EHR
what the rules found not documented (its files are in `capture_app/`; `scripts/capture.sh` builds its
libraries into `capture_app/vendor/`).

The service only serves it: the app runs in the clinician's browser with the EHR's access token and writes to
the EHR's FHIR server. Every answer carries a strict Content-Security-Policy: scripts only from here, calls
only to here, the allowed FHIR servers and the origins a site names, frames only inside the EHR's origins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..errors import NotFound
from .responses import JSON
from .smart_access import app_servers
from .state import State, state

APP_DIR = Path(__file__).parent / "capture_app"
BUILT = APP_DIR / "vendor" / ".built"
# What the app reads and writes, and nothing else (SMART App Launch 2.x scopes); `openid fhirUser` names
# the user, who becomes the performer of what is recorded.
SCOPES = " ".join(
    (
        "openid fhirUser patient/*.rs",
        "patient/Observation.c patient/QuestionnaireResponse.c patient/Procedure.c",
    )
)
UNBUILT = (
    "The capture app is not built on this server: run scripts/capture.sh (needs Node 20 and npm), "
    "then reload this page."
)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def content_security_policy(settings: Settings, fhir_servers: Sequence[str]) -> str:
    """`fhir_servers`: those the app may be launched against (`smart_access.app_servers`)."""
    connect = sorted({origin(url) for url in fhir_servers} - {""} | set(settings.capture_connect_sources))
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],  # LHC-Forms (Angular) sets styles on its elements
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'", *connect],
        "frame-ancestors": settings.capture_frame_ancestors or ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class _SecurityHeaders:
    """Headers on every file of the app: the policy, no sniffing, and no Referer (the launch and redirect
    URLs carry the launch id and the authorization code)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shared: State = scope["state"]["cds"]
        policy = content_security_policy(shared.settings, app_servers(shared.settings, shared.verifier))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        if not BUILT.is_file() and scope["path"].endswith(".html"):
            await Response(UNBUILT, status_code=503, media_type="text/plain")(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)


async def config(request: Request) -> JSON:
    """What the launch needs to know of this deployment: the client id the EHR registered, the scopes, and
    the Questionnaire to open when no card names one (a standalone launch)."""
    shared = state(request)
    questionnaires = list(shared.rules.ruleset.artifacts.get("Questionnaire", {}).values())
    if not questionnaires:
        raise NotFound.single("no Questionnaire is loaded, so there is nothing to record", "url", "not-found")
    first = questionnaires[0]
    return JSON(
        {
            "clientId": shared.settings.capture_client_id,
            "scopes": {"ehr": f"launch {SCOPES}", "standalone": f"launch/patient {SCOPES}"},
            "questionnaire": f"{first['url']}|{first['version']}",
        },
        headers={"Cache-Control": "no-store"},
    )


ROUTES = [
    Route("/capture/config.json", config, methods=["GET"]),
    Mount("/capture", app=_SecurityHeaders(StaticFiles(directory=APP_DIR, html=True)), name="capture"),
]
