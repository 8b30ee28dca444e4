"""`cds-service feedback-report` in a working folder it cannot write (the image's read-only /app): the report
is complete and the default chart is skipped with a note naming the folder, instead of failing on it; a
chart asked for by --chart still fails loudly when it cannot be written."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cds_service.store import Database

from support.unprivileged import read_only, without_dac_override


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store' / 'feedback.sqlite3'}"

    async def migrate() -> None:
        database = Database(url)
        await database.migrate()
        await database.close()

    asyncio.run(migrate())
    return url


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    with read_only(tmp_path / "app") as folder:
        yield folder


def report(folder: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), "CDS_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "cds_service", "feedback-report", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=env,
        preexec_fn=without_dac_override(),
    )


def test_the_default_chart_is_skipped_in_a_read_only_folder(read_only_folder: Path, store: str) -> None:
    result = report(read_only_folder, store)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Feedback by rule")  # the report itself, complete
    assert f"no chart: {read_only_folder} is not writable" in result.stderr
    assert "Matplotlib" not in result.stderr  # nothing tried to write a cache under the read-only $HOME
    assert list(read_only_folder.iterdir()) == []


def test_a_chart_asked_for_in_a_read_only_folder_fails(read_only_folder: Path, store: str) -> None:
    result = report(read_only_folder, store, "--chart", str(read_only_folder / "rates.svg"))
    assert result.returncode == 1
    assert "error: cannot write the chart" in result.stderr
