"""Logging set-up shared by the CLI, every server worker and uvicorn itself.

JSON lines by default (one object per record, with the request id), plain text for a terminal. Our own
loggers log ids, counts and timings only. HTTP client libraries log full request URLs at INFO, and a FHIR
search URL carries the patient id, so they are held at WARNING.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any, Literal

from .request_ids import current_request_id

QUIET = ("httpx", "httpcore", "watchfiles")
LogFormat = Literal["json", "text"]


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the call it was logged in ('-' outside a call)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


def logging_config(level: str, fmt: LogFormat = "json") -> dict[str, Any]:
    """A dictConfig for the root logger, also handed to uvicorn so its own lines come out the same way."""
    formatters = {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {fmt: formatters[fmt]},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "cds_service": {"level": level.upper()},
            "uvicorn": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            **{name: {"level": "WARNING"} for name in QUIET},
        },
    }


def configure_logging(level: str, fmt: LogFormat = "json") -> None:
    """Install the handler, unless logging is configured already (by uvicorn with `logging_config`, or by a
    test runner): then only the levels are set, so nobody's handlers are replaced."""
    config = logging_config(level, fmt)
    if not logging.getLogger().handlers:
        logging.config.dictConfig(config)
        return
    for name, logger in config["loggers"].items():
        logging.getLogger(name).setLevel(logger["level"])
