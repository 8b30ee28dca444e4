"""The feedback report's figures: per rule, cards issued, feedback, acceptance and override rates, and why.

Every figure counts cards, not submissions: a card's outcome is its latest feedback item by outcomeTimestamp
(a clinician who overrode a card and accepted it later has accepted it), and its override reason is that
item's; the items themselves are all kept, and counted as `submissions`. So a rule can never show more
feedback than cards issued. The period selects cards by when we issued them (`issued_card.issued_at`) with
their outcome whenever it came, so the response rate (cards with an outcome / cards issued) is a share of
one cohort. Feedback on a card we have no record of (a uuid we never issued, one past retention, or one
sent to another service's endpoint before that was refused) is 'unattributed' and selected by its own
outcome timestamp instead. Days are UTC; `until` is inclusive.

Every number comes from a GROUP BY in the database, so a year of cards is a few scans, not a load into memory.
The report never writes: it refuses a schema that is not at Alembic's head instead of migrating it. User
comments are free text that may identify a patient, so they are never even selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement

UNATTRIBUTED = "unattributed"
NO_CODE = "(no coded reason)"


class ReportError(Exception):
    """The report cannot be made from this database; the message says why."""


@dataclass(frozen=True)
class Period:
    since: date | None = None
    until: date | None = None  # inclusive

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> Period:
        period = cls(_day("--since", since), _day("--until", until))
        if period.since and period.until and period.since > period.until:
            raise ValueError(f"--since {period.since} is after --until {period.until}")
        return period

    def window(self, column: Any) -> list[ColumnElement[bool]]:
        """Conditions keeping `column` (a UTC timestamp) inside the period."""
        conditions = []
        if self.since:
            conditions.append(column >= datetime.combine(self.since, time(), UTC))
        if self.until:
            conditions.append(column < datetime.combine(self.until + timedelta(days=1), time(), UTC))
        return conditions

    def __str__(self) -> str:
        if self.since and self.until:
            return f"{self.since} to {self.until}"
        if self.since or self.until:
            return f"since {self.since}" if self.since else f"until {self.until}"
        return "at any time"


def _day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option}: expected an ISO date like 2026-11-01, not {text!r}") from None


@dataclass(frozen=True)
class Reason:
    system: str | None
    code: str | None
    display: str | None
    count: int
    share: float  # of the rule's overrides

    @property
    def label(self) -> str:
        return self.display or self.code or NO_CODE

    def rank(self) -> tuple[int, bool, str, str]:
        """Most frequent first, then by code; uncoded last."""
        return -self.count, self.code is None, self.code or "", self.system or ""


@dataclass(frozen=True)
class RuleStats:
    """Counts of cards, each by its outcome; `submissions` counts the feedback items those outcomes came from
    (a card answered again, or changed, has several)."""

    rule: str
    issued: int | None  # None for unattributed feedback: we do not know what was issued
    accepted: int
    overridden: int
    submissions: int = 0
    reasons: tuple[Reason, ...] = ()

    @property
    def feedback(self) -> int:
        """Cards with an outcome; never more than `issued` (a card has one)."""
        return self.accepted + self.overridden

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.feedback if self.feedback else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None

    @property
    def response_rate(self) -> float | None:
        return self.feedback / self.issued if self.issued else None


@dataclass(frozen=True)
class Report:
    period: Period
    service: str | None
    rules: tuple[RuleStats, ...]

    @property
    def has_feedback(self) -> bool:
        return any(rule.feedback for rule in self.rules)


def subject(report: Report) -> str:
    service = f"service {report.service}" if report.service else "all services"
    return f"cards issued {report.period}, {service}"
