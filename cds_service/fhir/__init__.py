"""Outbound FHIR: prefetch templates (expanding and checking them), the server allowlist, and the client
that fetches what the CDS client did not send."""

from .allowlist import forbidden_address, is_allowed
from .client import FetchLimits, FhirFetcher
from .errors import FetchError
from .templates import USER_TOKENS, TemplateError, check, expand, user_tokens

__all__ = [
    "USER_TOKENS",
    "FetchError",
    "FetchLimits",
    "FhirFetcher",
    "TemplateError",
    "check",
    "expand",
    "forbidden_address",
    "is_allowed",
    "user_tokens",
]
