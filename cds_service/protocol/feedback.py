"""Feedback the client sends when a clinician accepts or overrides one of our cards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AcceptedSuggestion(Lenient):
    id: str = Field(min_length=1, max_length=256)


class ReasonCoding(Lenient):
    """The lengths are the store's columns: what one database keeps must fit every database."""

    code: str = Field(min_length=1, max_length=256)
    system: str = Field(min_length=1, max_length=512)
    display: str | None = Field(default=None, max_length=512)


class OverrideReason(Lenient):
    reason: ReasonCoding | None = None
    userComment: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _reason_or_comment(self) -> OverrideReason:
        if self.reason is None and not self.userComment:
            raise ValueError("overrideReason needs a reason or a userComment")
        return self


class Feedback(Lenient):
    card: str = Field(min_length=1, max_length=128)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] = Field(default_factory=list)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: AwareDatetime

    @field_validator("outcomeTimestamp")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        """Stored in UTC (SQLite would drop the offset); year 1 at +14:00 has no UTC equivalent."""
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("outcomeTimestamp is outside the range of UTC timestamps") from None

    @model_validator(mode="after")
    def _outcome_consistency(self) -> Feedback:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is required when outcome is 'accepted'")
        if self.outcome == "accepted" and self.overrideReason is not None:
            raise ValueError("overrideReason is only allowed when outcome is 'overridden'")
        return self


class FeedbackRequest(Lenient):
    feedback: list[Feedback] = Field(min_length=1, max_length=1000)
