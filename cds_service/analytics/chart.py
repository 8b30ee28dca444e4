"""The report's chart: accepted vs overridden per rule, above the top override reasons (SVG or PNG).

matplotlib is an optional extra (`pip install 'cds-service[report]'`): the service never needs it, and the
report without a chart works without it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .model import Report, subject

CHART_FORMATS = (".png", ".svg")
TOP_REASONS = 10  # bars in the chart's reason panel
INSTALL_HINT = "pip install 'cds-service[report]'"


class ChartUnavailable(Exception):
    """matplotlib is not installed; the message says how to get it."""


def chart_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in CHART_FORMATS:
        raise ValueError(f"--chart: the file name must end in .png or .svg, not {text!r}")
    return path


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
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure  # no pyplot: no global state, no display; PNG renders with Agg
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ChartUnavailable(f"the chart needs matplotlib: {INSTALL_HINT}") from None

    rules = report.rules
    reasons = _top_reasons(report)
    rows = (max(len(rules), 1), max(len(reasons), 1))
    with rc_context({"svg.fonttype": "none", "font.size": 9}):  # SVG text stays searchable text
        figure = Figure(figsize=(9, 2.2 + 0.3 * sum(rows)), layout="constrained")
        upper, lower = figure.subplots(2, 1, height_ratios=[r + 1.5 for r in rows])
        figure.suptitle(f"Feedback by rule: {subject(report)}", fontsize=11)

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
            upper.set_xlabel("cards, by their latest outcome")
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
