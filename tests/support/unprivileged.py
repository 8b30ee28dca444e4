"""Child processes that meet file modes as an ordinary user would, even when the tests run as root.

Root writes anywhere whatever a folder's mode says (CAP_DAC_OVERRIDE). A child started with
`preexec_fn=without_dac_override` has lost that capability from its bounding set before it execs, so a
read-only folder is read-only to it, as it is to the image's uid 10001; files root owns stay its own.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

PR_CAPBSET_DROP = 24  # prctl(2)
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # linux/capability.h


def _drop() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def without_dac_override() -> Callable[[], None] | None:
    """The `preexec_fn` for subprocess: drops root's file-mode override; None (nothing to drop) otherwise."""
    return _drop if os.geteuid() == 0 else None


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """`folder`, made and read-only (mode 555) for the block, writable again after so pytest can remove it."""
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)
