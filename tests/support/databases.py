"""Real databases for the store tests: a SQLite file, and a fresh database on a real PostgreSQL server.

`CDS_TEST_POSTGRES_URL` points at a server that is already running (a database the role may create others
next to). Otherwise `scripts/postgres.sh` starts a throwaway cluster from Debian's package; when PostgreSQL
is not installed the PostgreSQL variants skip, unless `CDS_REQUIRE_POSTGRES=1` (as in CI) makes that an error.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from support.waiting import wait_for

POSTGRES = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"


def _unavailable(reason: str) -> None:
    if os.environ.get("CDS_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"CDS_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(f"{reason} (set CDS_REQUIRE_POSTGRES=1 to make this an error)")


@contextmanager
def postgres_server() -> Iterator[str]:
    """The SQLAlchemy URL of a database on a running PostgreSQL server."""
    if os.environ.get("CDS_TEST_POSTGRES_URL"):
        yield os.environ["CDS_TEST_POSTGRES_URL"]
        return
    env = {**os.environ, "PG_RUN_DIR": f"/tmp/cds-postgres-{os.getpid()}"}  # one per test session
    started = subprocess.run([str(POSTGRES), "start"], capture_output=True, text=True, timeout=120, env=env)
    if started.returncode != 0:
        _unavailable(f"scripts/postgres.sh start failed: {started.stderr[-1000:]}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(POSTGRES), "stop"], capture_output=True, timeout=60, env=env)


async def _admin(server_url: str, statement: str) -> None:
    url = make_url(server_url)
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE ends the sessions still in the database, but not an autovacuum worker that happens to be
        # there (it runs as no role this one may signal: InsufficientPrivilegeError): try again until it left
        wait_for(
            lambda: _drop(server_url, name),
            timeout=30,
            interval=0.05,
            what=f"database {name} to be dropped",
            ignoring=(asyncpg.exceptions.InsufficientPrivilegeError,),
        )


def _drop(server_url: str, name: str) -> bool:
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return True
