"""FHIR access for prefetch: template rendering/checking and allowlisted outbound fetching."""

from cds_service.fhir.fetch import FetchError, FetchLimits, FhirFetcher, is_allowed
from cds_service.fhir.templates import USER_TOKENS, TemplateError, check, render, user_tokens

__all__ = [
    "USER_TOKENS",
    "FetchError",
    "FetchLimits",
    "FhirFetcher",
    "TemplateError",
    "check",
    "is_allowed",
    "render",
    "user_tokens",
]
