"""Authentication of CDS Clients: the CDS Hooks 2.0 bearer JWT, checked against configured trusted clients."""

from .clients import TrustedClient, load_trusted_clients
from .errors import AuthError
from .verifier import JwtVerifier, ReplayGuard, VerifiedClient

__all__ = [
    "AuthError",
    "JwtVerifier",
    "ReplayGuard",
    "TrustedClient",
    "VerifiedClient",
    "load_trusted_clients",
]
