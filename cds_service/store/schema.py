"""The tables. Nothing here identifies a patient: cards are remembered by their random uuid and rule id, and
the quiet-card tables (V2-30) know a patient only by a keyed hash (`keys.PatientKeys`).

Alembic owns the schema (`migrations/`); these classes are what the code reads and writes, and a test checks
that the migrations build exactly these tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class FeedbackRow(Base):
    """One feedback item as the EHR sent it (cds-fb-1..3), deduplicated by a content hash."""

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


class IssuedCardRow(Base):
    """Which rule issued a card, so feedback (which names only the card uuid) can be attributed to a rule,
    and what the card offered, so feedback can be checked against it: its suggestion uuids and its override
    reasons as [system, code] pairs. Both are NULL on cards issued before revision 0004, which kept none."""

    __tablename__ = "issued_card"

    card_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(128))
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    indicator: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    suggestions: Mapped[list[str] | None] = mapped_column(JSON)
    override_reasons: Mapped[list[list[str]] | None] = mapped_column(JSON)


class SeenTokenRow(Base):
    """A JWT `jti` already accepted, kept until the token expires; shared by every worker and replica."""

    __tablename__ = "seen_token"

    iss: Mapped[str] = mapped_column(String(2048), primary_key=True)
    jti: Mapped[str] = mapped_column(String(256), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class ShownCardRow(Base):
    """A card a patient's clinician was shown, kept briefly: an override of it starts a snooze, and order-sign
    does not repeat what order-select said (V2-30). `unmet` is the card's unmet-criteria ids in order;
    `drafts` the keyed hashes of the draft orders the call was about."""

    __tablename__ = "shown_card"

    card_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    hook: Mapped[str] = mapped_column(String(32))
    patient_key: Mapped[str] = mapped_column(String(64), index=True)
    rule_id: Mapped[str] = mapped_column(String(64))
    unmet: Mapped[list[str]] = mapped_column(JSON)
    drafts: Mapped[list[str]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class SnoozeRow(Base):
    """A patient's rule whose card a clinician overrode, and the unmet list it had then (V2-30)."""

    __tablename__ = "snooze"

    patient_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unmet: Mapped[list[str]] = mapped_column(JSON)
    overridden_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class GeneratedSecretRow(Base):
    """A secret the service generated because none was configured (the patient-key secret on SQLite)."""

    __tablename__ = "generated_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
