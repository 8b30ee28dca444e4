"""Choosing the verification key for a token from a JWKS, and making sure it fits the token's algorithm.

The key, not the token header, decides how the signature is checked: a PyJWK bound to the allowlisted
algorithm is handed to PyJWT, never a string that an HS* header could reuse as an HMAC secret.
"""

from __future__ import annotations

from typing import Any

import jwt

from .errors import AuthError

# alg -> (kty, crv); only asymmetric signature algorithms exist here, so HS* and `none` can never be allowed.
KEY_SHAPES: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
}


def find_jwk(jwks: dict[str, Any], kid: str) -> list[dict[str, Any]]:
    """Signing keys with this kid (`use` absent or "sig"; encryption keys are not for us)."""
    return [
        key
        for key in jwks.get("keys", [])
        if isinstance(key, dict) and key.get("kid") == kid and key.get("use", "sig") == "sig"
    ]


def key_for(candidates: list[dict[str, Any]], alg: str) -> jwt.PyJWK:
    """The PyJWK for `alg` among the kid's candidates; AuthError if none has the right type, curve and alg."""
    kty, crv = KEY_SHAPES[alg]
    fitting = [k for k in candidates if k.get("kty") == kty and (crv is None or k.get("crv") == crv)]
    if not fitting:
        raise AuthError("key type mismatch")
    key = fitting[0]
    if key.get("alg", alg) != alg:
        raise AuthError("key alg mismatch")
    try:
        return jwt.PyJWK(key, algorithm=alg)
    except jwt.PyJWTError as exc:
        raise AuthError("bad jwk") from exc
