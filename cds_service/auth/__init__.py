"""Authentication of CDS Clients: the CDS Hooks 2.0 bearer JWT, checked against configured trusted clients."""

from cds_service.auth.clients import TrustedClient, load_trusted_clients
from cds_service.auth.errors import AuthError
from cds_service.auth.verifier import JwtVerifier, ReplayGuard, VerifiedClient

__all__ = [
    "AuthError",
    "JwtVerifier",
    "ReplayGuard",
    "TrustedClient",
    "VerifiedClient",
    "load_trusted_clients",
]
