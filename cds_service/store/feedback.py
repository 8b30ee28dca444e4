"""Feedback items: each submission in one transaction (all of it or none), deduplicated by content hash.

A client that retries the same submission does not store it twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import orjson
from sqlalchemy import select

from ..protocol.feedback import Feedback
from .database import Database
from .schema import FeedbackRow


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
        "outcome_timestamp": item.outcomeTimestamp,  # in UTC (protocol.feedback)
    }
    canonical = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)
    return {**values, "dedupe_key": hashlib.sha256(canonical).hexdigest(), "received_at": received_at}


class FeedbackStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, service_id: str, items: list[Feedback], received_at: datetime) -> list[FeedbackRow]:
        """Store a submission atomically; returns the items that were new (duplicates are skipped)."""
        rows = [_row(service_id, item, received_at) for item in items]
        statement = (
            self._db.insert(FeedbackRow)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(FeedbackRow)
        )
        async with self._db.sessions.begin() as session:
            return list((await session.scalars(statement)).all())

    async def all(self) -> list[FeedbackRow]:
        async with self._db.sessions() as session:
            return list((await session.scalars(select(FeedbackRow).order_by(FeedbackRow.id))).all())
