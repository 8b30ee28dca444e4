"""What one authenticated call pays for, timed alone in-process: the ES384 signature check (with RS384 beside
it), the whole `JwtVerifier.verify` with its JWKS cached and no replay check, and the replay check
(`SeenTokens.first_use`) on SQLite (WAL, synchronous=NORMAL) and PostgreSQL, one call at a time and 16 at
once (the group commit at work)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt
import jwt_tokens
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from cds_service.auth import JwtVerifier, load_trusted_clients
from cds_service.store import Database, SeenTokens

AUDIENCE = "http://127.0.0.1:1/cds-services/postfusion-pain-patient-view"
ROUNDS = 7  # medians over rounds of `n` calls each


def _median_us(function: Callable[[], object], n: int) -> float:
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(n):
            function()
        rounds.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(rounds)


async def _median_us_async(
    make: Callable[[int], Awaitable[object]], n: int, at_once: int = 1
) -> dict[str, float]:
    """Median wall and CPU µs per call (CPU: the whole process, driver threads included) over rounds of `n`
    calls, `at_once` of them in flight together."""
    wall, cpu, counter = [], [], 0
    for _ in range(ROUNDS):
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range(n // at_once):
            await asyncio.gather(*(make(counter + k) for k in range(at_once)))
            counter += at_once
        calls = n // at_once * at_once
        wall.append((time.perf_counter() - started) / calls * 1e6)
        cpu.append((time.process_time() - started_cpu) / calls * 1e6)
    return {"wall_us": statistics.median(wall), "cpu_us": statistics.median(cpu)}


def _signatures(n: int) -> dict[str, float]:
    message = b"x" * 400  # about a CDS Hooks JWT's signing input
    p384 = ec.generate_private_key(ec.SECP384R1())
    es384 = p384.sign(message, ec.ECDSA(hashes.SHA384()))
    rsa2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs384 = rsa2048.sign(message, padding.PKCS1v15(), hashes.SHA384())
    es_public, rs_public = p384.public_key(), rsa2048.public_key()
    return {
        "es384_verify_us": _median_us(lambda: es_public.verify(es384, message, ec.ECDSA(hashes.SHA384())), n),
        "rs384_verify_us": _median_us(
            lambda: rs_public.verify(rs384, message, padding.PKCS1v15(), hashes.SHA384()), n
        ),
        "es384_sign_us": _median_us(lambda: p384.sign(message, ec.ECDSA(hashes.SHA384())), n),
    }


class _NoReplayCheck:
    async def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        return True


async def _verify(client: jwt_tokens.Client, n: int) -> dict[str, float]:
    tokens = client.tokens(AUDIENCE, n * ROUNDS + 1)
    async with httpx.AsyncClient(trust_env=False) as http:
        verifier = JwtVerifier(load_trusted_clients(client.trusted_clients), http, replay=_NoReplayCheck())
        await verifier.verify(f"Bearer {tokens.pop()}", AUDIENCE)  # fetches the JWKS once
        return await _median_us_async(lambda i: verifier.verify(f"Bearer {tokens[i]}", AUDIENCE), n)


async def _replay(url: str, n: int) -> dict[str, dict[str, float]]:
    database = Database(url)
    await database.migrate()
    guard, run = SeenTokens(database), uuid.uuid4().hex
    expires = time.time() + 600

    def one(prefix: str) -> Callable[[int], Awaitable[bool]]:
        return lambda i: guard.first_use(jwt_tokens.ISS, f"{run}-{prefix}-{i}", expires, time.time())

    try:
        return {
            "one_at_a_time": await _median_us_async(one("single"), n),
            "16_at_once": await _median_us_async(one("group"), n, at_once=16),
        }
    finally:
        await database.close()


def run(client: jwt_tokens.Client, postgres_url: str | None, quick: bool = False) -> dict[str, Any]:
    n = 100 if quick else 300
    sqlite = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='cds-bench-tokens-')}/tokens.sqlite3"
    results: dict[str, Any] = {
        "calls_per_round": n,
        "rounds": ROUNDS,
        "pyjwt": jwt.__version__,
        **_signatures(n),
        "verify_without_replay_check": asyncio.run(_verify(client, n)),
        "replay_check": {"sqlite": asyncio.run(_replay(sqlite, n))},
    }
    if postgres_url is not None:
        results["replay_check"]["postgresql"] = asyncio.run(_replay(postgres_url, n))
    return results
