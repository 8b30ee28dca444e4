"""Reading the report from the database: two GROUP BY queries in one read-only snapshot, cards issued and
cards' outcomes (each card's latest feedback item, ranked by a window function that SQLite and PostgreSQL
share)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, and_, func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from ..store import Database, FeedbackRow, IssuedCardRow, head_revision
from .model import UNATTRIBUTED, Period, Reason, Report, ReportError, RuleStats


def _latest() -> Subquery:
    """Each card's feedback rows, ranked: 1 is its outcome (the latest by outcomeTimestamp, the later
    received on a tie), and `submissions` counts all of them. A card is one per service: a row sent to
    another service's endpoint (kept from before those were refused) is not that card's."""
    card = (FeedbackRow.service_id, FeedbackRow.card_uuid)
    return select(
        *card,
        FeedbackRow.outcome,
        FeedbackRow.override_system,
        FeedbackRow.override_code,
        FeedbackRow.override_display,
        FeedbackRow.outcome_timestamp,
        func.row_number()
        .over(partition_by=card, order_by=(FeedbackRow.outcome_timestamp.desc(), FeedbackRow.id.desc()))
        .label("rank"),
        func.count().over(partition_by=card).label("submissions"),
    ).subquery("latest")


def _in_report(latest: Subquery, period: Period, service: str | None) -> ColumnElement[bool]:
    """The outcomes that belong in the report: attributed ones by the card's issue time, the rest by their
    own outcome timestamp (see the model's docstring)."""
    attributed = [IssuedCardRow.card_uuid.is_not(None), *period.window(IssuedCardRow.issued_at)]
    unattributed = [IssuedCardRow.card_uuid.is_(None), *period.window(latest.c.outcome_timestamp)]
    if service is not None:
        attributed.append(IssuedCardRow.service_id == service)
        unattributed.append(latest.c.service_id == service)
    return or_(and_(*attributed), and_(*unattributed))


def _outcome_query(period: Period, service: str | None) -> Select[Any]:
    """Cards per rule, outcome and override reason, with their submissions: one pass over the ranked
    feedback (ranking is the report's cost; a second pass would double it)."""
    latest = _latest()
    return (
        select(
            IssuedCardRow.rule_id,
            latest.c.outcome,
            latest.c.override_system,
            latest.c.override_code,
            func.max(latest.c.override_display),  # one display per code, whatever each EHR sent
            func.count(),
            func.sum(latest.c.submissions),
        )
        .select_from(latest)
        .outerjoin(
            IssuedCardRow,
            and_(
                IssuedCardRow.card_uuid == latest.c.card_uuid,
                IssuedCardRow.service_id == latest.c.service_id,
            ),
        )
        .where(latest.c.rank == 1, _in_report(latest, period, service))
        .group_by(IssuedCardRow.rule_id, latest.c.outcome, latest.c.override_system, latest.c.override_code)
    )


async def _read(connection: AsyncConnection, period: Period, service: str | None) -> tuple[RuleStats, ...]:
    issued_filter = period.window(IssuedCardRow.issued_at)
    if service is not None:
        issued_filter.append(IssuedCardRow.service_id == service)
    issued_query = (
        select(IssuedCardRow.rule_id, func.count()).where(*issued_filter).group_by(IssuedCardRow.rule_id)
    )
    issued: dict[str, int] = dict((await connection.execute(issued_query)).all())
    counts: dict[str | None, Counter[str]] = defaultdict(Counter)
    coded: dict[str | None, list[tuple[str | None, str | None, str | None, int]]] = defaultdict(list)
    for rule, outcome, system, code, display, cards, submissions in await connection.execute(
        _outcome_query(period, service)
    ):
        counts[rule][outcome] += cards
        counts[rule]["submissions"] += int(submissions)
        if outcome == "overridden":
            coded[rule].append((system, code, display, cards))

    def stats(rule: str | None) -> RuleStats:
        overridden = counts[rule]["overridden"]
        reasons = (
            Reason(system, code, display, n, n / overridden) for system, code, display, n in coded[rule]
        )
        return RuleStats(
            rule=rule or UNATTRIBUTED,
            issued=issued.get(rule, 0) if rule is not None else None,
            accepted=counts[rule]["accepted"],
            overridden=overridden,
            submissions=counts[rule]["submissions"],
            reasons=tuple(sorted(reasons, key=Reason.rank)),
        )

    rules = [stats(rule) for rule in sorted(issued.keys() | {r for r in counts if r is not None})]
    return (*rules, stats(None)) if None in counts else tuple(rules)


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
