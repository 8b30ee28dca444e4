"""Feedback analytics for `cds-service feedback-report`: acceptance and override rates per rule, and why.

The period selects cards by when we issued them (`issued_card.issued_at`) and counts all the feedback those
cards received, whenever it arrived, so the response rate (cards with feedback / cards issued) is a share of
one cohort. Feedback on a card we have no record of (a uuid we never issued, or one past retention) is
'unattributed' and selected by its own outcome timestamp instead. Days are UTC; `until` is inclusive.

Every number comes from a GROUP BY in the database, so a year of cards is a few scans, not a load into memory.
The report never writes: it refuses a schema that is not at Alembic's head instead of migrating it. User
comments are free text that may identify a patient, so they are never even selected.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from .store import Database, FeedbackRow, IssuedCardRow, head_revision

UNATTRIBUTED = "unattributed"
NO_CODE = "(no coded reason)"
CHART_FORMATS = (".png", ".svg")
TOP_REASONS = 10  # bars in the chart's reason panel


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


def chart_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in CHART_FORMATS:
        raise ValueError(f"--chart: the file name must end in .png or .svg, not {text!r}")
    return path


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
    rule: str
    issued: int | None  # None for unattributed feedback: we do not know what was issued
    responded: int  # cards with at least one feedback item
    accepted: int
    overridden: int
    reasons: tuple[Reason, ...] = ()

    @property
    def feedback(self) -> int:
        return self.accepted + self.overridden

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.feedback if self.feedback else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None

    @property
    def response_rate(self) -> float | None:
        return self.responded / self.issued if self.issued else None


@dataclass(frozen=True)
class Report:
    period: Period
    service: str | None
    rules: tuple[RuleStats, ...]

    @property
    def has_feedback(self) -> bool:
        return any(rule.feedback for rule in self.rules)


# --- reading ---------------------------------------------------------------------------------------------


def _in_report(period: Period, service: str | None) -> ColumnElement[bool]:
    """Feedback joined (outer) to issued_card that belongs in the report; see the module docstring."""
    attributed = [IssuedCardRow.card_uuid.is_not(None), *period.window(IssuedCardRow.issued_at)]
    unattributed = [IssuedCardRow.card_uuid.is_(None), *period.window(FeedbackRow.outcome_timestamp)]
    if service is not None:
        attributed.append(IssuedCardRow.service_id == service)
        unattributed.append(FeedbackRow.service_id == service)
    return or_(and_(*attributed), and_(*unattributed))


def _feedback_select(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .select_from(FeedbackRow)
        .outerjoin(IssuedCardRow, IssuedCardRow.card_uuid == FeedbackRow.card_uuid)
    )


def _count(outcome: str) -> ColumnElement[int]:
    return func.sum(case((FeedbackRow.outcome == outcome, 1), else_=0))


async def _read(connection: AsyncConnection, period: Period, service: str | None) -> tuple[RuleStats, ...]:
    issued_filter = period.window(IssuedCardRow.issued_at)
    if service is not None:
        issued_filter.append(IssuedCardRow.service_id == service)
    issued_query = (
        select(IssuedCardRow.rule_id, func.count()).where(*issued_filter).group_by(IssuedCardRow.rule_id)
    )
    scope = _in_report(period, service)
    outcome_query = (
        _feedback_select(
            IssuedCardRow.rule_id,
            func.count(distinct(FeedbackRow.card_uuid)),
            _count("accepted"),
            _count("overridden"),
        )
        .where(scope)
        .group_by(IssuedCardRow.rule_id)
    )
    reason_query = (
        _feedback_select(
            IssuedCardRow.rule_id,
            FeedbackRow.override_system,
            FeedbackRow.override_code,
            func.max(FeedbackRow.override_display),  # one display per code, whatever each EHR sent
            func.count(),
        )
        .where(scope, FeedbackRow.outcome == "overridden")
        .group_by(IssuedCardRow.rule_id, FeedbackRow.override_system, FeedbackRow.override_code)
    )
    issued: dict[str, int] = dict((await connection.execute(issued_query)).all())
    outcomes = {rule: tuple(counts) for rule, *counts in await connection.execute(outcome_query)}
    reasons: dict[str | None, list[Reason]] = {}
    for rule, system, code, display, count in await connection.execute(reason_query):
        overridden = outcomes[rule][2]
        reasons.setdefault(rule, []).append(Reason(system, code, display, count, count / overridden))

    def stats(rule: str | None) -> RuleStats:
        responded, accepted, overridden = outcomes.get(rule, (0, 0, 0))
        return RuleStats(
            rule=rule or UNATTRIBUTED,
            issued=issued.get(rule, 0) if rule is not None else None,
            responded=responded,
            accepted=accepted,
            overridden=overridden,
            reasons=tuple(sorted(reasons.get(rule, ()), key=Reason.rank)),
        )

    rules = [stats(rule) for rule in sorted(issued.keys() | {r for r in outcomes if r is not None})]
    return (*rules, stats(None)) if None in outcomes else tuple(rules)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


async def build_report(database_url: str, period: Period, service: str | None = None) -> Report:
    """Read the report from the database at `database_url`; ReportError if it cannot be read as it is."""
    path = _sqlite_file(database_url)
    if path is not None and not path.is_file():  # connecting would create an empty one
        raise ReportError(f"no database file at {path} (CDS_DATABASE_URL)")
    try:
        database = Database(database_url)
    except ValueError as error:
        raise ReportError(str(error)) from None
    try:
        head = head_revision()
        current = await database.revision()
        if current != head:
            raise ReportError(
                f"the database schema is at revision {current or 'none'}, this cds-service reads {head}; "
                "run `cds-service migrate` (the service also migrates it when it starts); a report never "
                "changes the database"
            )
        # PostgreSQL: one snapshot for all the queries, and the server itself refuses any write
        options = (
            {"postgresql_readonly": True, "isolation_level": "REPEATABLE READ"}
            if database.dialect == "postgresql"
            else {}
        )
        async with database.engine.connect() as connection:
            await connection.execution_options(**options)
            rules = await _read(connection, period, service)
    except (SQLAlchemyError, OSError) as error:
        raise ReportError(f"cannot read the database: {getattr(error, 'orig', None) or error}") from None
    finally:
        await database.close()
    return Report(period, service, rules)


# --- output ----------------------------------------------------------------------------------------------

RULE_COLUMNS = (
    "rule",
    "issued",
    "feedback",
    "cards_with_feedback",
    "accepted",
    "overridden",
    "acceptance_rate",
    "override_rate",
    "response_rate",
)
REASON_COLUMNS = ("rule", "reason_system", "reason_code", "reason_display", "count", "share")


def _rule_record(rule: RuleStats) -> dict[str, Any]:
    values = (
        rule.rule,
        rule.issued,
        rule.feedback,
        rule.responded,
        rule.accepted,
        rule.overridden,
        rule.acceptance_rate,
        rule.override_rate,
        rule.response_rate,
    )
    return dict(zip(RULE_COLUMNS, values, strict=True))


def _reason_record(reason: Reason) -> dict[str, Any]:
    return {
        "reason_system": reason.system,
        "reason_code": reason.code,
        "reason_display": reason.display,
        "count": reason.count,
        "share": reason.share,
    }


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}"


def _subject(report: Report) -> str:
    service = f"service {report.service}" if report.service else "all services"
    return f"cards issued {report.period}, {service}"


def as_text(report: Report) -> str:
    lines = [f"Feedback by rule ({_subject(report)})"]
    if not report.rules:
        return "\n".join([*lines, "no cards issued and no feedback in this period", ""])
    width = max(len(rule.rule) for rule in report.rules)
    header = ("issued", "feedback", "accepted", "overridden", "acceptance %", "override %", "response %")
    lines.append(f"{'rule':<{width}}  " + "  ".join(header))
    for rule in report.rules:
        cells = (
            "-" if rule.issued is None else str(rule.issued),
            str(rule.feedback),
            str(rule.accepted),
            str(rule.overridden),
            _percent(rule.acceptance_rate),
            _percent(rule.override_rate),
            _percent(rule.response_rate),
        )
        lines.append(
            f"{rule.rule:<{width}}  " + "  ".join(c.rjust(len(h)) for c, h in zip(cells, header, strict=True))
        )
    lines += ["", "Override reasons"]
    if not report.has_feedback:
        lines.append("no feedback in this period")
    elif not any(rule.reasons for rule in report.rules):
        lines.append("no overrides in this period")
    for rule in report.rules:
        if rule.reasons:
            lines.append(rule.rule)
        for reason in rule.reasons:
            label = f"{reason.code}  {reason.display or ''}".rstrip() if reason.code else NO_CODE
            lines.append(f"  {reason.count:>6}  {_percent(reason.share):>5}%  {label}")
    return "\n".join([*lines, ""])


def as_csv(report: Report) -> str:
    """Two CSV tables, rules then reasons, each with its own header, separated by one empty line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RULE_COLUMNS)
    writer.writerows(_rule_record(rule).values() for rule in report.rules)
    writer.writerow(())
    writer.writerow(REASON_COLUMNS)
    for rule in report.rules:
        writer.writerows((rule.rule, *_reason_record(reason).values()) for reason in rule.reasons)
    return out.getvalue()


def as_json(report: Report) -> str:
    document = {
        "since": report.period.since,
        "until": report.period.until,
        "service": report.service,
        "rules": [
            {**_rule_record(rule), "reasons": [_reason_record(reason) for reason in rule.reasons]}
            for rule in report.rules
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


FORMATS = {"text": as_text, "csv": as_csv, "json": as_json}


# --- chart -----------------------------------------------------------------------------------------------

ACCEPTED_COLOUR, OVERRIDDEN_COLOUR, REASON_COLOUR = "#2a9d8f", "#e76f51", "#8d99ae"


def _top_reasons(report: Report) -> list[tuple[str, int]]:
    """The most frequent override reasons over all rules, as (label, count)."""
    counts: Counter[tuple[str | None, str | None]] = Counter()
    labels: dict[tuple[str | None, str | None], str] = {}
    for rule in report.rules:
        for reason in rule.reasons:
            counts[reason.system, reason.code] += reason.count
            labels[reason.system, reason.code] = reason.label
    return [(_shorten(labels[key]), count) for key, count in counts.most_common(TOP_REASONS)]


def _shorten(text: str, limit: int = 56) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(axes: Any, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="0.4")
    axes.set_axis_off()


def _bars(axes: Any, labels: Sequence[str], values: Sequence[int], colour: str, **options: Any) -> Any:
    positions = range(len(labels))
    bars = axes.barh(positions, values, color=colour, height=0.7, **options)
    axes.set_yticks(positions, labels)
    axes.set_ylim(len(labels) - 0.5, -0.5)  # first item at the top
    return bars


def write_chart(report: Report, path: Path) -> None:
    """Accepted vs overridden per rule (acceptance rate labelled) above the top override reasons."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure  # no pyplot: no global state, no display; PNG renders with Agg
    from matplotlib.ticker import MaxNLocator

    rules = report.rules
    reasons = _top_reasons(report)
    rows = (max(len(rules), 1), max(len(reasons), 1))
    with rc_context({"svg.fonttype": "none", "font.size": 9}):  # SVG text stays searchable text
        figure = Figure(figsize=(9, 2.2 + 0.3 * sum(rows)), layout="constrained")
        upper, lower = figure.subplots(2, 1, height_ratios=[r + 1.5 for r in rows])
        figure.suptitle(f"Feedback by rule: {_subject(report)}", fontsize=11)

        upper.set_title("Accepted vs overridden, per rule", loc="left")
        if not rules:
            _message(upper, "no feedback in this period")
        else:
            labels = [rule.rule for rule in rules]
            accepted = [rule.accepted for rule in rules]
            _bars(upper, labels, accepted, ACCEPTED_COLOUR, label="accepted")
            _bars(
                upper,
                labels,
                [r.overridden for r in rules],
                OVERRIDDEN_COLOUR,
                left=accepted,
                label="overridden",
            )
            widest = max(rule.feedback for rule in rules) or 1
            for row, rule in enumerate(rules):
                note = (
                    f"{rule.acceptance_rate:.0%} accepted of {rule.feedback}"
                    if rule.feedback
                    else f"no feedback ({rule.issued} issued)"
                )
                upper.text(rule.feedback + widest * 0.01, row, note, va="center", fontsize=8)
            upper.set_xlim(0, widest * 1.35)
            upper.xaxis.set_major_locator(MaxNLocator(integer=True))
            upper.set_xlabel("feedback items")
            upper.legend(loc="lower right", bbox_to_anchor=(1, 1), ncols=2, frameon=False)

        lower.set_title(f"Top override reasons, all rules (at most {TOP_REASONS})", loc="left")
        if not reasons:
            _message(
                lower, "no overrides in this period" if report.has_feedback else "no feedback in this period"
            )
        else:
            bars = _bars(lower, [label for label, _ in reasons], [n for _, n in reasons], REASON_COLOUR)
            lower.bar_label(bars, padding=3, fontsize=8)
            lower.set_xlim(0, max(n for _, n in reasons) * 1.15)
            lower.xaxis.set_major_locator(MaxNLocator(integer=True))
            lower.set_xlabel("overrides")
        figure.savefig(path, format=path.suffix.lower()[1:], dpi=150)
