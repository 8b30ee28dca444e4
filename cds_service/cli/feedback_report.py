"""`cds-service feedback-report`: the analytics report on stdout, and its chart in a file.

The default chart goes into the working folder only when that folder is writable; elsewhere (the image's
read-only /app) the report is complete without it and a note says so. A chart named with --chart is written
there or the command fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from ..analytics import FORMATS, ChartUnavailable, Period, ReportError, build_report, chart_path, write_chart
from ..config import Settings

DEFAULT_CHART = "feedback-report.svg"


def feedback_report(args: argparse.Namespace, settings: Settings) -> int:
    try:
        period = Period.parse(args.since, args.until)
        chart = None if args.no_chart else chart_path(args.chart or DEFAULT_CHART)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(build_report(settings.database_url, period, args.service))
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(FORMATS[args.format](report))
    if chart is None:
        return 0
    if args.chart is None and not os.access(Path.cwd(), os.W_OK):
        print(f"no chart: {Path.cwd()} is not writable (--chart PATH, or --no-chart)", file=sys.stderr)
        return 0
    try:
        write_chart(report, chart)
    except ChartUnavailable as error:
        if args.chart is None:  # the default chart: the report itself is complete
            print(f"no chart: {error} (or --no-chart)", file=sys.stderr)
            return 0
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot write the chart: {error}", file=sys.stderr)
        return 1
    print(f"chart: {chart}", file=sys.stderr)  # stderr: stdout stays one CSV or JSON document
    return 0
