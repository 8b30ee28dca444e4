"""Fixtures for the FHIR fetch tests: one loopback FHIR server per session, a fresh httpx client per test."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from fhir_loopback import Loopback, running_loopback


@pytest.fixture(scope="session")
def loopback_session() -> Iterator[Loopback]:
    with running_loopback() as loopback:
        yield loopback


@pytest.fixture
def loopback(loopback_session: Loopback) -> Loopback:
    loopback_session.reset()
    return loopback_session


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http
