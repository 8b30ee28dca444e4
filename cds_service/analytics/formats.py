"""The report as text for a terminal, as CSV and as JSON. User comments are never among the columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import orjson

from .model import NO_CODE, Reason, Report, RuleStats, subject

RULE_COLUMNS = (
    "rule",
    "issued",
    "feedback",
    "accepted",
    "overridden",
    "submissions",
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
        rule.accepted,
        rule.overridden,
        rule.submissions,
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


def as_text(report: Report) -> str:
    lines = [f"Feedback by rule ({subject(report)})"]
    if not report.rules:
        return "\n".join([*lines, "no cards issued and no feedback in this period", ""])
    width = max(len(rule.rule) for rule in report.rules)
    header = (
        "issued",
        "feedback",
        "accepted",
        "overridden",
        "submissions",
        "acceptance %",
        "override %",
        "response %",
    )
    lines.append(f"{'rule':<{width}}  " + "  ".join(header))
    for rule in report.rules:
        cells = (
            "-" if rule.issued is None else str(rule.issued),
            str(rule.feedback),
            str(rule.accepted),
            str(rule.overridden),
            str(rule.submissions),
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


FORMATS: dict[str, Callable[[Report], str]] = {"text": as_text, "csv": as_csv, "json": as_json}
