"""Logging set-up shared by the CLI and every server worker.

Our own loggers log ids, counts and timings only. HTTP client libraries log full request URLs at INFO, and
a FHIR search URL carries the patient id, so they are held at WARNING.
"""

from __future__ import annotations

import logging

QUIET = ("httpx", "httpcore", "watchfiles")


def configure_logging(level: str) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("cds_service").setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
