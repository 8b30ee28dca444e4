"""A real HAPI FHIR R4 server for the integration tests, started by the project's own script.

`CDS_HAPI_URL` points the tests at a server that is already running. Otherwise `scripts/hapi.sh` builds and
starts one; without Java and Maven the tests skip, unless `CDS_REQUIRE_HAPI=1` (as in CI) makes that an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from cds_service.cli.cases import Case, load_cases
from cds_service.cli.smoke import load

from support.smart_server import SmartServer, running_smart_server

ROOT = Path(__file__).resolve().parents[2]
HAPI = ROOT / "scripts" / "hapi.sh"
SMART_CLIENT = "cds-capture"  # the capture app's client_id


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


def _hapi_run_dir() -> Path:
    """The run folder of the HAPI server the tests use, where it reads the SMART configuration file."""
    if os.environ.get("HAPI_RUN_DIR"):
        return Path(os.environ["HAPI_RUN_DIR"])
    if os.environ.get("CDS_HAPI_URL"):
        pytest.skip("CDS_HAPI_URL names a HAPI server whose run folder is unknown: set HAPI_RUN_DIR to it")
    return ROOT / "tests" / "hapi" / "run"


@pytest.fixture
def smart_hapi(hapi: str) -> Iterator[Callable[..., tuple[str, SmartServer]]]:
    """HAPI as the FHIR server of a SMART launch: `smart_hapi(*redirect_uris)` starts the tests' authorization
    server for client "cds-capture" and those redirect URIs, has HAPI publish its configuration at
    `{hapi}/.well-known/smart-configuration` and check bearer tokens against it, and returns
    `(hapi_base, smart_server)`. Afterwards HAPI is an open server again."""
    published = _hapi_run_dir() / "smart-configuration.json"

    def publish(server: SmartServer) -> None:
        staged = published.with_suffix(".tmp")
        staged.write_text(json.dumps(server.configuration()))
        staged.replace(published)  # HAPI reads it on each request: never half-written
        served = httpx.get(f"{hapi}/.well-known/smart-configuration", timeout=60)
        if served.status_code != 200 or served.json().get("issuer") != server.url:
            _unavailable(
                f"HAPI at {hapi} does not serve {published} (HTTP {served.status_code}): start it with "
                "scripts/hapi.sh, which passes -Dhapi.smart-configuration"
            )

    with ExitStack() as servers:

        def start(*redirect_uris: str) -> tuple[str, SmartServer]:
            server = servers.enter_context(running_smart_server(hapi, SMART_CLIENT, list(redirect_uris)))
            publish(server)
            return hapi, server

        try:
            yield start
        finally:
            published.unlink(missing_ok=True)
