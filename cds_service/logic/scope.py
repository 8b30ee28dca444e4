"""Per-thread stack of enclosing iterator scopes, read by ``val`` with a ``[[n], ...]`` scope-up path.

Iterators push two entries per level: the data they were called with, then a small metadata object
(``{"index": i}``). ``[[1], "index"]`` therefore reads the current index and ``[[2], ...]`` the data
around the iterator. Iterators only push when their body actually reads scopes (known at compile time),
so ordinary rules never touch this stack. Evaluation is synchronous, so a thread-local is enough.
"""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()


def stack() -> list[Any]:
    try:
        frames: list[Any] = _local.frames
    except AttributeError:
        frames = _local.frames = []
    return frames


def lookup(data: Any, level: int) -> Any:
    """The data ``level`` scope entries up from ``data`` (``0`` is ``data`` itself, ``None`` if too far)."""
    if level == 0:
        return data
    frames = stack()
    return frames[-level] if level <= len(frames) else None
