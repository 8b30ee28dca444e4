"""Shared test fixtures: the app with a frozen clock and a temporary store, example hook requests, and a
loopback FHIR server for the fallback path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cds_service.config import Settings
from cds_service.store import Database, SeenTokens
from cds_service.web.app import create_app

from support.databases import fresh_database, postgres_server
from support.fhir_server import FhirState, running_fhir_server
from support.hooks import T0


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[tuple[str, FhirState]]:
    with running_fhir_server() as server:
        yield server


@pytest.fixture
def fhir(fhir_server: tuple[str, FhirState]) -> tuple[str, FhirState]:
    fhir_server[1].reset()
    return fhir_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on both: an empty SQLite file, and an empty database on real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cds.sqlite3'}"
        return
    with fresh_database(request.getfixturevalue("postgres")) as url:
        yield url


@pytest.fixture
async def seen_tokens(tmp_path: Path) -> AsyncIterator[SeenTokens]:
    """The JWT replay store, on a migrated SQLite file (the PostgreSQL variant is in tests/store)."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'tokens.sqlite3'}")
    await database.migrate()
    yield SeenTokens(database)
    await database.close()


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'feedback.sqlite3'}",
            "card_journal_dir": tmp_path / "journal",
            "reload": False,
            "fhir_allow_http": True,  # the loopback test servers speak plain http
            "auth": "off",  # the JWT is tested in web/test_authentication.py
            "fhir_timeout_s": 1.0,
            "fhir_total_timeout_s": 2.0,
            "patient_key_secret": "test-patient-key-secret-0123456789abcdef",  # as a deployment sets it
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def client_factory(settings_factory: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(
            create_app(settings_factory(**overrides), clock=lambda: T0), raise_server_exceptions=False
        )
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_factory: Callable[..., TestClient]) -> TestClient:
    return client_factory()
