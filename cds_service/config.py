"""Settings, read from `CDS_*` environment variables so a deployment needs no config file."""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from .auth import TrustedClient, load_trusted_clients
from .fhir import FetchLimits
from .fhir.pinned import PinnedTransport
from .store.database import DEFAULT_URL

log = logging.getLogger("cds_service")


def bundled(name: str) -> Path:
    """A folder shipped inside the package: `plandefinitions` (the rules) or `fixtures` (synthetic
    patients). In a checkout they are the repository's own top-level folders, linked into the package."""
    return Path(str(files("cds_service") / "bundled" / name))


class Settings(BaseSettings):
    """Every setting has a default that runs out of the box; the README documents each one."""

    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore")

    auth: Literal["jwt", "off"] = Field(
        default="jwt",
        description="Verify the CDS client's JWT ('jwt'), or not at all ('off', development only).",
    )
    trusted_clients: Path | None = Field(
        default=None, description="YAML or JSON file of trusted CDS clients (issuer, keys, FHIR servers)."
    )
    plandefinitions_dir: Path = Field(
        default_factory=lambda: bundled("plandefinitions"),
        description="Folder of PlanDefinition, Library, ValueSet, CodeSystem and Questionnaire JSON files.",
    )
    parameters_file: Path | None = Field(
        default=None,
        description="Optional FHIR Parameters JSON overriding rule thresholds for this site.",
    )
    site_dir: Path | None = Field(
        default=None,
        description="Optional folder of this site's additions: ValueSet files adding its own codes (EHR "
        "orderables, local lab codes) to the bundled value sets, and at most one Parameters file.",
    )
    database_url: str = Field(
        default=DEFAULT_URL,
        description="SQLAlchemy async URL of the feedback store (sqlite+aiosqlite or postgresql+asyncpg).",
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="The database password as it is (`@`, `:`, `/` need no percent-encoding); replaces "
        "any password in CDS_DATABASE_URL.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="The service's external base URL (behind a proxy); default: the URL requests arrive on.",
    )
    http_proxy: str | None = Field(
        default=None,
        description="Proxy for the service's own calls (FHIR servers, JWKS). HTTP_PROXY and the like in the "
        "environment are ignored, so a proxy can never be slipped in to read tokens or answer key lookups.",
    )
    max_body_bytes: int = Field(default=5_000_000, ge=1024, description="Largest request body accepted.")
    max_json_depth: int = Field(default=64, ge=8, description="Deepest JSON nesting accepted in a request.")
    max_header_bytes: int = Field(
        default=32_768,
        ge=4096,
        description="Largest request head (request line and headers) accepted; larger ones are answered 431.",
    )
    max_headers: int = Field(
        default=100, ge=16, description="Most header fields accepted in one request; more are answered 431."
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a connection has to send a complete request head, from opening or from the "
        "request's first byte; a slower or silent one is closed.",
    )
    max_resources: int = Field(
        default=20_000, ge=1, description="Most FHIR resources one hook call may carry or fetch in all."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=["*"], description="Comma-separated browser origins allowed by CORS, or '*'."
    )
    fhir_allowed_servers: Annotated[list[str], NoDecode] = Field(
        default=[], description="Comma-separated FHIR base URLs the service may fetch from."
    )
    fhir_allow_http: bool = Field(
        default=False,
        description="Allow plain-http FHIR servers (development only; CDS Hooks requires https).",
    )
    fhir_timeout_s: float = Field(default=5.0, gt=0, description="Timeout of one FHIR request.")
    fhir_total_timeout_s: float = Field(
        default=10.0, gt=0, description="Time budget to fetch one prefetch key."
    )
    fhir_max_pages: int = Field(default=20, ge=1, description="Search pages followed per prefetch key.")
    fhir_page_size: int = Field(
        default=FetchLimits().page_size,
        ge=0,
        description="`_count` asked of fallback searches whose template sets none (a server returns at most "
        "its own maximum; one that refuses it is asked again without); 0: the FHIR server's own page size.",
    )
    fhir_max_response_bytes: int = Field(
        default=10_000_000,
        ge=1024,
        description="Largest FHIR answer read, decoded (a compressed one is inflated only that far).",
    )
    fhir_max_call_bytes: int = Field(
        default=30_000_000,
        ge=1024,
        description="Most decoded bytes one hook call reads from FHIR servers, over all keys and pages.",
    )
    reload: bool = Field(default=True, description="Watch the plan-definition folder and reload on change.")
    log_level: str = Field(default="INFO", description="Python logging level.")
    log_format: Literal["json", "text"] = Field(
        default="json", description="Log lines as JSON objects ('json') or plain text ('text')."
    )
    card_retention_days: int = Field(
        default=730,
        ge=1,
        description="Days a card's uuid → rule id record is kept for feedback attribution.",
    )
    card_journal_dir: Path | None = Field(
        default=Path("data/journal"),
        description="Writable local folder where each process journals the cards it issued until they are "
        "in the database, so a killed process loses none; workers and replicas may share it. Empty: no "
        "journal (cards issued in the last half second before a crash are lost).",
    )
    quiet_cards: bool = Field(
        default=True,
        description="Quiet when acknowledged (V2-30): an overridden card stays away for its patient and "
        "rule, and order-sign does not repeat order-select; false shows every card and remembers no patient.",
    )
    patient_key_secret: SecretStr | None = Field(
        default=None,
        description="Secret of the keyed hash (HMAC-SHA256) that is all the store knows of a patient; "
        "required with PostgreSQL. Without it, on SQLite, a random one is generated and kept in the store.",
    )

    capture_client_id: str = Field(
        default="cds-capture",
        description="The client id the EHR's authorization server registered the capture app (/capture/) "
        "under.",
    )
    capture_frame_ancestors: Annotated[list[str], NoDecode] = Field(
        default=["'self'"],
        description="Comma-separated origins that may show the capture app in a frame (the EHR's), as "
        "Content-Security-Policy frame-ancestors sources.",
    )
    capture_connect_sources: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Comma-separated origins the capture app may call besides this service and the allowed "
        "FHIR servers: the EHR's authorization server, when it has another origin.",
    )

    @field_validator("card_journal_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator(
        "cors_origins",
        "fhir_allowed_servers",
        "capture_frame_ancestors",
        "capture_connect_sources",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _password_into_url(self) -> Settings:
        """A password kept apart from the URL (compose, a secret store) goes in percent-encoded: pasted into
        the URL as it is, `@`, `:` or `/` would change the host, port or database."""
        if self.database_password is not None:
            url = make_url(self.database_url).set(password=self.database_password.get_secret_value())
            self.database_url = url.render_as_string(hide_password=False)
        return self


def outbound_client(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client for the service's own calls: no redirects, nothing taken from the environment
    (proxies, certificate paths, .netrc credentials), a proxy only when `CDS_HTTP_PROXY` names one.
    Without a proxy, each connection goes to an address checked in the same lookup (PinnedTransport);
    through one, the proxy resolves and connects, and is trusted to refuse internal addresses."""
    transport = (
        PinnedTransport()
        if settings.http_proxy is None
        else httpx.AsyncHTTPTransport(trust_env=False, proxy=settings.http_proxy)
    )
    return httpx.AsyncClient(follow_redirects=False, trust_env=False, transport=transport)


def fetch_limits(settings: Settings) -> FetchLimits:
    """The outbound FHIR limits a deployment configured."""
    return FetchLimits(
        timeout_s=settings.fhir_timeout_s,
        total_timeout_s=settings.fhir_total_timeout_s,
        max_pages=settings.fhir_max_pages,
        page_size=settings.fhir_page_size,
        max_response_bytes=settings.fhir_max_response_bytes,
        max_call_bytes=settings.fhir_max_call_bytes,
    )


def trusted_clients(settings: Settings) -> list[TrustedClient] | None:
    """The trusted clients for CDS_AUTH=jwt (None when auth is off); start-up fails without them."""
    if settings.auth == "off":
        log.warning("CDS_AUTH=off: callers are NOT verified; use this for local development only")
        return None
    if settings.trusted_clients is None:
        raise ValueError("CDS_AUTH=jwt needs CDS_TRUSTED_CLIENTS (a file of trusted clients); see the README")
    if not settings.public_base_url:
        raise ValueError(
            "CDS_AUTH=jwt needs CDS_PUBLIC_BASE_URL (the URL EHRs call, e.g. https://cds.example.org): "
            "a token's audience is checked against it, never against the Host header a caller sends"
        )
    return load_trusted_clients(settings.trusted_clients)


MIN_SECRET_CHARS = 32  # `openssl rand -hex 32` gives 64


def patient_key_secret(settings: Settings) -> str | None:
    """The secret patients are keyed with (V2-30), or None to let the store generate and keep one.

    That is allowed on SQLite, so the one-command local start works, and refused on PostgreSQL (a deployment):
    a secret kept in the shared database sits beside the keys it protects, and anyone who can read those could
    test guessed patient ids against them.
    """
    if settings.patient_key_secret is not None:
        secret = settings.patient_key_secret.get_secret_value()
        if len(secret) < MIN_SECRET_CHARS:  # checked here, not by pydantic, whose error would print the value
            raise ValueError(f"CDS_PATIENT_KEY_SECRET must have at least {MIN_SECRET_CHARS} characters")
        return secret
    if settings.quiet_cards and make_url(settings.database_url).get_backend_name() == "postgresql":
        raise ValueError(
            "CDS_PATIENT_KEY_SECRET is required with PostgreSQL: a random string of at least 32 characters "
            "(e.g. `openssl rand -hex 32`), the same for every replica; or set CDS_QUIET_CARDS=false. "
            "See the README"
        )
    return None
