"""Whether this process can write a local folder the store needs, asked before start-up goes on."""

from __future__ import annotations

import tempfile
from pathlib import Path


def write_error(folder: Path) -> OSError | None:
    """Make `folder` and write a file in it: the error that stops this process, or None. A probe rather than a
    mode check, so a read-only mount, a root-owned bind mount and a full disk all show as they will."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as error:
        return error
    return None
