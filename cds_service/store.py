"""The feedback store: SQLite by default, PostgreSQL by URL, through SQLAlchemy's async engine.

A submission is written in one transaction (all of it or none), and each feedback item has a content hash
with a unique index, so a client that retries the same submission does not store it twice.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import JSON, DateTime, Integer, String, Text, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .protocol.feedback import Feedback


class Base(DeclarativeBase):
    pass


class FeedbackRow(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    service_id: Mapped[str] = mapped_column(String(128), index=True)
    card_uuid: Mapped[str] = mapped_column(String(128), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    accepted_suggestions: Mapped[list[str]] = mapped_column(JSON)
    override_system: Mapped[str | None] = mapped_column(String(512))
    override_code: Mapped[str | None] = mapped_column(String(256))
    override_display: Mapped[str | None] = mapped_column(String(512))
    user_comment: Mapped[str | None] = mapped_column(Text)
    outcome_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _row(service_id: str, item: Feedback, received_at: datetime) -> dict[str, object]:
    reason = item.overrideReason.reason if item.overrideReason else None
    values: dict[str, object] = {
        "service_id": service_id,
        "card_uuid": item.card,
        "outcome": item.outcome,
        "accepted_suggestions": [s.id for s in item.acceptedSuggestions],
        "override_system": reason.system if reason else None,
        "override_code": reason.code if reason else None,
        "override_display": reason.display if reason else None,
        "user_comment": item.overrideReason.userComment if item.overrideReason else None,
        "outcome_timestamp": item.outcomeTimestamp,
    }
    canonical = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    return {**values, "dedupe_key": hashlib.sha256(canonical).hexdigest(), "received_at": received_at}


class FeedbackStore:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.dialect = parsed.get_backend_name()
        self.engine: AsyncEngine = create_async_engine(url, pool_pre_ping=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def start(self) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def add(self, service_id: str, items: list[Feedback]) -> int:
        """Store a submission atomically; returns how many items were new (duplicates are skipped)."""
        received_at = datetime.now(UTC)
        rows = [_row(service_id, item, received_at) for item in items]
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        statement = insert(FeedbackRow).values(rows).on_conflict_do_nothing(index_elements=["dedupe_key"])
        async with self.sessions.begin() as session:
            result = await session.execute(statement)
        return max(result.rowcount, 0)

    async def all(self) -> list[FeedbackRow]:
        async with self.sessions() as session:
            return list((await session.scalars(select(FeedbackRow).order_by(FeedbackRow.id))).all())
