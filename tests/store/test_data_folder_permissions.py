"""A SQLite store in a folder the service cannot write (a root-owned bind mount over the image's /app/data)
fails at start with a message naming the folder and the uid, not SQLite's bare "unable to open database file".

The store starts in a child process that meets file modes as the image's uid 10001 would
(support.unprivileged: root, too, finds a read-only folder read-only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.unprivileged import read_only, without_dac_override

PROGRAM = """
import asyncio, sys
from cds_service.store import Database

async def start(url):
    database = Database(url)
    try:
        await database.migrate()
    finally:
        await database.close()

asyncio.run(start(sys.argv[1]))
"""


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    with read_only(tmp_path / "data") as folder:
        yield folder


def start_store(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={"PATH": os.environ.get("PATH", ""), "HOME": "/"},
        preexec_fn=without_dac_override(),
    )


def test_an_unwritable_sqlite_folder_is_named_with_the_uid(read_only_folder: Path) -> None:
    result = start_store(f"sqlite+aiosqlite:///{read_only_folder / 'feedback.sqlite3'}")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: "), result.stderr
    assert str(read_only_folder) in last and f"uid {os.geteuid()}" in last, last


def test_a_folder_that_cannot_be_made_is_named_with_the_uid(read_only_folder: Path) -> None:
    result = start_store(f"sqlite+aiosqlite:///{read_only_folder / 'store' / 'feedback.sqlite3'}")
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: "), result.stderr
    assert str(read_only_folder / "store") in last and f"uid {os.geteuid()}" in last, last
