"""One database for everything the service must remember across workers and replicas.

SQLite (embedded, one host) or PostgreSQL (several replicas), through SQLAlchemy's async engine. The schema
is Alembic's: every process upgrades it to head at start. On PostgreSQL an advisory lock makes replicas that
start together take turns; on SQLite `cds-service serve` upgrades once before it starts its workers.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from .folders import write_error

DEFAULT_URL = "sqlite+aiosqlite:///data/feedback.sqlite3"  # embedded, relative to the working folder
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema that `create_all` made before migrations existed
MIGRATION_LOCK = 7_270_841_190  # pg_advisory_xact_lock key, any constant of our own


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The newest schema revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    tables = set(inspect(connection).get_table_names())
    if "feedback" in tables and MigrationContext.configure(connection).get_current_revision() is None:
        command.stamp(config, BASELINE)  # a store made before migrations: adopt it, keep its rows
    command.upgrade(config, "head")


def _sqlite_pragmas(connection: Any, _: object) -> None:
    """WAL: readers do not block the writer, and a commit costs no fsync of the whole file, which made every
    answered call (it records its cards) three times slower. Workers of one host wait for the lock."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


ROWS_PER_INSERT = 1000  # a multi-row INSERT binds one parameter per column and row; asyncpg allows 32,767
# What SQLAlchemy and the drivers raise when the database is away (connection refused or dropped, its name
# not resolving, the pool exhausted, a server shutting down or starting up), as opposed to a statement or rows
# it refuses (a defect, or poison data). Connecting is not wrapped by SQLAlchemy: asyncpg's and the socket's
# own errors arrive as they are.
OUTAGES: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def _writable_folder(folder: Path) -> None:
    """Make the SQLite store's folder, and refuse to start when this process cannot write it (a root-owned
    bind mount over the image's /app/data): SQLite itself would say only "unable to open database file"."""
    if write_error(folder) is not None:
        raise ValueError(
            f"CDS_DATABASE_URL: the SQLite store's folder {folder.absolute()} is not writable by uid "
            f"{os.geteuid()}, which the service runs as: give that uid the folder (chown), or mount a volume"
        )


class Database:
    """The engine, sessions and the dialect's INSERT (for ON CONFLICT) of the configured URL."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(
                f"CDS_DATABASE_URL: only sqlite and postgresql are supported, not {self.dialect}"
            )
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            _writable_folder(Path(parsed.database).parent)
        # hide_parameters: an error's text would carry the row, a clinician's free-text comment among it.
        # pre-ping only where a pooled connection can go stale (a server restarted or dropped it): on SQLite
        # the ping was four thread hops of aiosqlite per checkout, which doubled the JWT replay check's cost
        self.engine: AsyncEngine = create_async_engine(
            url, pool_pre_ping=self.dialect == "postgresql", hide_parameters=True
        )
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert

    async def insert_new(self, table: type[Any], rows: list[dict[str, Any]]) -> None:
        """Insert `rows` in one transaction, ROWS_PER_INSERT at a time, skipping those already there: one
        large response (thousands of cards) must not become a statement the driver refuses."""
        async with self.sessions.begin() as session:
            for start in range(0, len(rows), ROWS_PER_INSERT):
                chunk = rows[start : start + ROWS_PER_INSERT]
                await session.execute(self.insert(table).values(chunk).on_conflict_do_nothing())

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision (nothing to do when it is there already)."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)

    async def revision(self) -> str | None:
        async with self.engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()
