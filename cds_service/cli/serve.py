"""`cds-service serve` and `cds-service migrate`: run the HTTP service, or only upgrade its database."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings, patient_key_secret, trusted_clients
from ..ops.logs import logging_config
from ..plans.errors import RuleSetError
from ..store import Database
from ..store.journal import check_writable
from .errors import report_problems
from .loaded import rules_in_service

APP_FACTORY = "cds_service.web.app:create_app"  # by name: each worker builds its own app
HTTP_PROTOCOL = "cds_service.web.http_guard:GuardedHttpTools"  # httptools with bounded request heads


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    host = args.host
    if args.dev:  # workers read their settings from the environment
        os.environ.update(CDS_AUTH="off", CDS_FHIR_ALLOW_HTTP="true")
        settings = Settings()
        host = "127.0.0.1"
    try:
        rules_in_service(settings)
        trusted_clients(settings)
        patient_key_secret(settings)
        if settings.card_journal_dir is not None:
            check_writable(settings.card_journal_dir)
    except RuleSetError as error:
        return report_problems(error)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if status := migrate(args, settings):  # once, before the workers start (each then finds it at head)
        return status
    _prepare_metrics_folder(args.workers)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        http=HTTP_PROTOCOL,
        host=host,
        port=args.port,
        workers=args.workers,
        log_config=logging_config(settings.log_level, settings.log_format),
        access_log=False,
    )
    return 0


def _prepare_metrics_folder(workers: int) -> None:
    """With several workers, each writes its metrics to files in one folder, which `/metrics` adds up (made
    here unless PROMETHEUS_MULTIPROC_DIR names one). The folder must start empty: values left by an earlier
    run would be counted again."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory is None:
        if workers == 1:
            return
        directory = tempfile.mkdtemp(prefix="cds-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


async def _upgrade(settings: Settings) -> str | None:
    database = Database(settings.database_url)
    try:
        await database.migrate()
        return await database.revision()
    finally:
        await database.close()


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        revision = asyncio.run(_upgrade(settings))
    except (ValueError, OSError, SQLAlchemyError) as error:
        print(f"error: cannot migrate the database: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"database schema at revision {revision}")
    return 0
