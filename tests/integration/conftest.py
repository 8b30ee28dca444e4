"""A real HAPI FHIR R4 server for the integration tests, started by the project's own script.

`CDS_HAPI_URL` points the tests at a server that is already running. Otherwise `scripts/hapi.sh` builds and
starts one; without Java and Maven the tests skip, unless `CDS_REQUIRE_HAPI=1` (as in CI) makes that an error.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cds_service.cli.cases import Case, load_cases
from cds_service.cli.smoke import load

ROOT = Path(__file__).resolve().parents[2]
HAPI = ROOT / "scripts" / "hapi.sh"


def _unavailable(reason: str) -> None:
    if os.environ.get("CDS_REQUIRE_HAPI") == "1":
        pytest.fail(f"CDS_REQUIRE_HAPI=1 but {reason}")
    pytest.skip(f"{reason} (set CDS_REQUIRE_HAPI=1 to make this an error)")


@pytest.fixture(scope="session")
def hapi() -> Iterator[str]:
    """The base URL of a running HAPI FHIR R4 server."""
    if os.environ.get("CDS_HAPI_URL"):
        yield os.environ["CDS_HAPI_URL"].rstrip("/")
        return
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"HAPI FHIR needs {' and '.join(missing)}, which is not installed")
    started = subprocess.run([str(HAPI), "start"], capture_output=True, text=True, timeout=1200)
    if started.returncode != 0:
        _unavailable(f"scripts/hapi.sh start failed: {started.stderr[-2000:]}")
    base = started.stdout.strip().splitlines()[-1]
    try:
        yield base
    finally:
        subprocess.run([str(HAPI), "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def cases() -> list[Case]:
    return load_cases()


@pytest.fixture(scope="session")
def loaded(hapi: str, cases: list[Case]) -> Iterator[str]:
    """HAPI with every synthetic patient on it (tagged), removed again at the end."""
    asyncio.run(load(hapi, cases))
    try:
        yield hapi
    finally:
        asyncio.run(load(hapi, cases, remove=True))
