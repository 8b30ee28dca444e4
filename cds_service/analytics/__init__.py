"""Feedback analytics (`cds-service feedback-report`): acceptance and override rates per rule, and the
override reasons, read from the store; as text, CSV, JSON and a chart."""

from .chart import ChartUnavailable, chart_path, write_chart
from .formats import FORMATS
from .model import Period, Reason, Report, ReportError, RuleStats
from .queries import build_report

__all__ = [
    "FORMATS",
    "ChartUnavailable",
    "Period",
    "Reason",
    "Report",
    "ReportError",
    "RuleStats",
    "build_report",
    "chart_path",
    "write_chart",
]
