"""Replay protection for JWTs, in the shared database so a token replayed to another worker or replica is
caught too."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete

from .database import Database
from .schema import SeenTokenRow

PURGE_EVERY = 256  # calls between deletions of expired entries (an indexed range delete)


@dataclass
class _Waiting:
    """Tokens waiting for the next write, each with the future its caller awaits."""

    expires_at: dict[tuple[str, str], float] = field(default_factory=dict)
    answers: dict[tuple[str, str], asyncio.Future[bool]] = field(default_factory=dict)
    now: float = float("inf")


class SeenTokens:
    """(iss, jti) pairs already accepted, each kept until its token expires.

    Group commit: the calls that arrive while a write is on its way are recorded together by the next one, in
    one transaction, so a busy worker pays one commit for many tokens (one commit each made the replay check
    cost more than the rest of the JWT check). Every caller is answered only after its row is committed.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._calls = 0
        self._waiting = _Waiting()
        self._writer: asyncio.Task[None] | None = None

    async def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        """Record the token; False if the same (iss, jti) was accepted before and has not expired yet.

        Atomic in the database: of two replicas racing with the same token exactly one inserts it. An expired
        entry for the same pair is taken over (its earlier token can no longer be played back anyway).
        """
        key = (iss, jti)
        waiting = self._waiting
        if key in waiting.answers:  # the same token twice in one batch: the second is the replay
            return False
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiting.expires_at[key], waiting.answers[key] = expires_at, answer
        waiting.now = min(waiting.now, now)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await answer

    async def _write(self) -> None:
        """Write batches until none is waiting; a failed write fails its own batch's callers only."""
        while self._waiting.answers:
            batch, self._waiting = self._waiting, _Waiting()
            try:
                accepted = await self._record(batch)
            except asyncio.CancelledError:  # shutting down: its callers are not left waiting forever
                for answer in batch.answers.values():
                    answer.cancel()
                raise
            except Exception as error:
                for answer in batch.answers.values():
                    if not answer.done():  # a caller that went away (cancelled) needs no answer
                        answer.set_exception(error)
                continue
            for key, answer in batch.answers.items():
                if not answer.done():
                    answer.set_result(key in accepted)

    async def _record(self, batch: _Waiting) -> set[tuple[str, str]]:
        """One transaction for the batch; the pairs it returns were new (or expired, and taken over)."""
        rows = [
            {"iss": iss, "jti": jti, "expires_at": at, "now": batch.now}
            for (iss, jti), at in batch.expires_at.items()
        ]
        purge = self._calls // PURGE_EVERY != (self._calls + len(rows)) // PURGE_EVERY
        self._calls += len(rows)
        async with self._db.engine.begin() as connection:
            if purge:
                await connection.execute(delete(SeenTokenRow).where(SeenTokenRow.expires_at <= batch.now))
            result = await connection.execute(self._insert, rows)
            return {(iss, jti) for iss, jti in result}

    @functools.cached_property
    def _insert(self) -> Any:
        """Built once (SQLAlchemy then reuses its compiled form); run with many rows, the driver gets one
        multi-row INSERT per ROWS_PER_INSERT."""
        insert = self._db.insert(SeenTokenRow).values(
            iss=bindparam("iss"), jti=bindparam("jti"), expires_at=bindparam("expires_at")
        )
        return insert.on_conflict_do_update(
            index_elements=["iss", "jti"],
            set_={"expires_at": insert.excluded.expires_at},
            where=SeenTokenRow.expires_at <= bindparam("now"),
        ).returning(SeenTokenRow.iss, SeenTokenRow.jti)
