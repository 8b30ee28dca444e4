"""Waiting for something to happen: poll a predicate against a deadline instead of sleeping a fixed time.

`wait_for` returns as soon as the predicate holds, so a fast machine never waits longer than it must, and a
slow one gets the whole `timeout`; when the time runs out it fails naming what it waited for, for how long,
and the last answer (or the last ignored exception). `wait_for_async` is the same for an async predicate,
for tests that run in the event loop the awaited code needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL_S = 0.02
MAX_INTERVAL_S = 0.05  # a longer interval would be a fixed sleep in disguise


class WaitTimeout(AssertionError):
    """The predicate did not hold within the timeout."""


def _check(interval: float) -> None:
    if not 0 < interval <= MAX_INTERVAL_S:
        raise ValueError(f"poll interval must be in (0, {MAX_INTERVAL_S}] s, not {interval}")


def _describe(predicate: Callable[..., object], what: str | None) -> str:
    if what:
        return what
    name = getattr(predicate, "__qualname__", None) or repr(predicate)
    return f"{name}()"


def _timed_out(
    what: str, timeout: float, polls: int, last: object, error: BaseException | None
) -> WaitTimeout:
    detail = f"last raised {type(error).__name__}: {error}" if error is not None else f"last answer: {last!r}"
    return WaitTimeout(f"timed out after {timeout:g} s ({polls} polls) waiting for {what}; {detail}")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = INTERVAL_S,
    *,
    what: str | None = None,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy, and return that.

    Exceptions of the `ignoring` types count as "not yet" (a server that does not accept connections yet);
    any other exception propagates at once. Raises WaitTimeout (an AssertionError) after `timeout` seconds.
    """
    _check(interval)
    deadline = time.monotonic() + timeout
    polls = 0
    last: object = None
    error: BaseException | None = None
    while True:
        polls += 1
        try:
            last = predicate()
        except ignoring as raised:
            error = raised
        else:
            error = None
            if last:
                return last
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out(_describe(predicate, what), timeout, polls, last, error)
        time.sleep(min(interval, remaining))


async def wait_for_async(
    predicate: Callable[[], Awaitable[T]],
    timeout: float = 10.0,
    interval: float = INTERVAL_S,
    *,
    what: str | None = None,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """`wait_for` for a coroutine predicate: awaited every `interval` seconds, the loop runs in between."""
    _check(interval)
    deadline = time.monotonic() + timeout
    polls = 0
    last: object = None
    error: BaseException | None = None
    while True:
        polls += 1
        try:
            value = await predicate()
        except ignoring as raised:
            error = raised
        else:
            error = None
            last = value
            if value:
                return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out(_describe(predicate, what), timeout, polls, last, error)
        await asyncio.sleep(min(interval, remaining))
