"""The single exception type of the auth package, safe to log and never sent to the client."""

from __future__ import annotations

MAX_ECHO = 64


class AuthError(Exception):
    """A rejected request. `reason` is for the server log only: the client gets a bare 401.

    Reasons never contain the token, and attacker-controlled values are passed through `clip` first.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clip(value: object) -> str:
    """A log-safe rendering of an attacker-controlled value: repr (escapes newlines) cut to ~64 chars."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 1] + "…"
