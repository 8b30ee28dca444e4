"""Reading JSON request bodies safely: media type, size counted as it streams, syntax and nesting depth."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from ..errors import InvalidRequest, TooLarge
from .errors import ClientGone, UnsupportedMediaType


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def nesting_within(value: Any, limit: int) -> bool:
    """True when no object or array in `value` is nested deeper than `limit`; descends only into
    containers, and recursion is bounded by `limit`."""

    def within(node: Any, depth: int) -> bool:
        if depth > limit:
            return False
        for child in node.values() if type(node) is dict else node:
            kind = type(child)
            if (kind is dict or kind is list) and not within(child, depth + 1):
                return False
        return True

    return within(value, 1)


async def read_json(request: Request, limit: int, max_depth: int = 64) -> Any:
    """The decoded body: 415 unless JSON, 413 past `limit` bytes (counted as it streams), 400 if malformed."""
    if not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType.single(
            "Content-Type must be application/json", "header.Content-Type", "not-supported"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge.single(f"request body is larger than {limit} bytes", "body", "too-costly")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise TooLarge.single(f"request body is larger than {limit} bytes", "body", "too-costly")
    except ClientDisconnect:
        raise ClientGone.single(
            "the client disconnected before sending its whole body", "body", "incomplete"
        ) from None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest.single(
            f"malformed JSON: {error.msg} at position {error.pos}", "body", "structure"
        ) from None
    if type(value) in (dict, list) and not nesting_within(value, max_depth):
        raise InvalidRequest.single(f"JSON nested deeper than {max_depth} levels", "body", "too-costly")
    return value
