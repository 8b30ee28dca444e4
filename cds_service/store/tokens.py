"""Replay protection for JWTs, in the shared database so a token replayed to another worker or replica is
caught too."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete

from .database import Database
from .schema import SeenTokenRow

PURGE_EVERY = 256  # calls between deletions of expired entries (an indexed range delete)


class SeenTokens:
    """(iss, jti) pairs already accepted, each kept until its token expires."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._calls = 0

    async def first_use(self, iss: str, jti: str, expires_at: float, now: float) -> bool:
        """Record the token; False if the same (iss, jti) was accepted before and has not expired yet.

        One atomic statement: of two replicas racing with the same token exactly one inserts it. An expired
        entry for the same pair is taken over (its earlier token can no longer be played back anyway).
        """
        self._calls += 1
        insert = self._db.insert(SeenTokenRow).values(iss=iss, jti=jti, expires_at=expires_at)
        statement = insert.on_conflict_do_update(
            index_elements=["iss", "jti"],
            set_={"expires_at": insert.excluded.expires_at},
            where=SeenTokenRow.expires_at <= now,
        )
        async with self._db.sessions.begin() as session:
            if self._calls % PURGE_EVERY == 0:
                await session.execute(delete(SeenTokenRow).where(SeenTokenRow.expires_at <= now))
            result = await session.execute(statement)
        return cast(CursorResult[Any], result).rowcount == 1
