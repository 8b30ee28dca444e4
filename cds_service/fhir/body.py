"""A FHIR server's answer, read within a byte budget and inflated as it arrives.

httpx would inflate a compressed body whole and without a bound: 97 KB of gzip on the wire became 100 MB in
memory. Here the raw bytes are inflated piece by piece, never past what is left of the budget, so neither a
large answer nor a small one that inflates (a gzip bomb) can take a worker's memory: past the limit the read
stops and the key fails as too large. Only the encodings asked for in `ACCEPT_ENCODING` are inflated.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .errors import FetchError

ACCEPT_ENCODING = "gzip, deflate"  # the encodings inflated here within the budget; never br or zstd
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS}


@dataclass(slots=True)
class ByteBudget:
    """The decoded bytes one hook call may read from FHIR servers, over all its keys and pages."""

    total: int
    remaining: int = -1

    def __post_init__(self) -> None:
        if self.remaining < 0:
            self.remaining = self.total


def _inflater(encoding: str) -> zlib._Decompress | None:
    encoding = encoding.strip().lower()
    if encoding in {"", "identity"}:
        return None
    if encoding not in _WBITS:
        raise FetchError(f"FHIR server sent a body encoded as {encoding!r}, which was not asked for", 200)
    return zlib.decompressobj(_WBITS[encoding])


def _inflated(inflater: zlib._Decompress, raw: bytes, room: int) -> list[bytes]:
    """What `raw` inflates to, at most `room + 1` bytes (one more than fits tells that it did not fit)."""
    pieces, produced, pending = [], 0, raw
    while pending and produced <= room:
        piece = inflater.decompress(pending, room + 1 - produced)
        pieces.append(piece)
        produced += len(piece)
        pending = inflater.unconsumed_tail
    return pieces


async def read_bounded(
    raw: AsyncIterator[bytes], encoding: str, limit: int, budget: ByteBudget | None = None
) -> bytes:
    """The decoded body of `raw` (the bytes as they came over the wire, in `encoding`), or FetchError
    (too-large) once it passes `limit` bytes or what is left of the call's `budget`."""
    inflater = _inflater(encoding)
    body = bytearray()

    def room() -> int:
        left = limit - len(body)
        return left if budget is None else min(left, budget.remaining)

    def add(piece: bytes) -> None:
        body.extend(piece)
        if len(body) > limit:
            raise FetchError(
                f"FHIR server sent more than the {limit:,} bytes one FHIR answer may have", 200, "too-large"
            )
        if budget is not None:
            budget.remaining -= len(piece)  # as it arrives: the call's keys are read at the same time
            if budget.remaining < 0:
                raise FetchError(
                    f"FHIR server sent more than the {budget.total:,} bytes one call may read",
                    200,
                    "too-large",
                )

    try:
        async for chunk in raw:
            for piece in [chunk] if inflater is None else _inflated(inflater, chunk, room()):
                add(piece)
        if inflater is not None:
            add(inflater.flush())
    except zlib.error:
        raise FetchError(f"FHIR server sent a body that is not valid {encoding}", 200, "invalid") from None
    return bytes(body)
