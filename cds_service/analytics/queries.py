"""Reading the report from the database: three GROUP BY queries in one read-only snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..store import Database, FeedbackRow, IssuedCardRow, head_revision
from .model import UNATTRIBUTED, Period, Reason, Report, ReportError, RuleStats


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
