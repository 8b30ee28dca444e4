"""The issued-card journal (#17, 9): rows a process journaled and did not commit are replayed by the next one
to start, exactly once, never those of a live process; a folder it cannot write stops start-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from cds_service.store import Database, IssuedCardRow, IssuedCards
from cds_service.store.journal import Journal, JournalUnwritable, check_writable

from support.issued import rules_of

T = datetime(2026, 11, 1, 12, tzinfo=UTC)
KILLED = """
import os, signal, sys, json
from pathlib import Path
from cds_service.store.journal import Journal
journal = Journal(Path(sys.argv[1]))
for rows in json.loads(sys.argv[2]):
    journal.append(rows)
os.kill(os.getpid(), signal.SIGKILL)
"""


def row(uuid: str, rule: str = "REV-ODDS") -> dict[str, object]:
    return {
        "card_uuid": uuid,
        "service_id": "postfusion-pain-order-sign",
        "rule_id": rule,
        "indicator": "warning",
        "issued_at": T.isoformat(),
    }


def killed_after_appending(folder: Path, appends: list[list[dict[str, object]]]) -> None:
    """A real process that journals `appends` and is killed with SIGKILL before any flush."""
    done = subprocess.run([sys.executable, "-c", KILLED, str(folder), json.dumps(appends)], timeout=60)
    assert done.returncode == -signal.SIGKILL


def card(uuid: str) -> dict[str, object]:
    return {"uuid": uuid, "indicator": "info", "source": {"topic": {"code": "REV-MET"}}}


def test_a_killed_process_rows_are_adopted_once_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    killed_after_appending(tmp_path, [[row("a1"), row("a2")], [row("a3")]])
    (segment,) = tmp_path.glob("*.jsonl")
    with segment.open("ab") as torn:  # the process died inside a write: its response was never sent
        torn.write(b'{"card_uuid": "a4", "serv')
    first, second = Journal(tmp_path), Journal(tmp_path)
    assert [r["card_uuid"] for r in first.adopt()] == ["a1", "a2", "a3"]
    assert second.adopt() == []  # held by the first until settled
    first.settle(first.seal())
    assert not segment.exists()
    first.close()
    second.close()
    assert list(tmp_path.iterdir()) == []  # a clean stop leaves nothing


def test_a_live_process_rows_are_never_adopted(tmp_path: Path) -> None:
    live, starting = Journal(tmp_path), Journal(tmp_path)  # two descriptors: as two processes, for flock
    live.append([row("b1")])
    assert starting.adopt() == []
    starting.close()
    live.close()  # a stop with rows not flushed (its database away): they stay for the next start
    assert [r["card_uuid"] for r in Journal(tmp_path).adopt()] == ["b1"]


def test_a_flush_that_commits_first_deletes_only_its_own_segments(tmp_path: Path) -> None:
    """Two flushes in flight (the write-behind and a feedback lookup): the later one's commit must not
    delete the segment of rows the earlier one has not committed yet."""
    journal = Journal(tmp_path)
    journal.append([row("c1")])
    earlier = journal.seal()
    journal.append([row("c2")])
    later = journal.seal()
    journal.settle(later)
    assert [s.exists() for s in earlier.segments] == [True]
    journal.restore(earlier)  # the earlier one failed: its segment goes with its rows to the next flush
    retried = journal.seal()
    assert retried.segments == earlier.segments
    journal.settle(retried)
    journal.close()
    assert list(tmp_path.iterdir()) == []


async def test_replayed_rows_reach_the_database_even_from_an_older_version(
    tmp_path: Path, database_url: str
) -> None:
    """A row journaled before a column existed is stored with NULL there, its datetime as a datetime."""
    folder = tmp_path / "journal"
    killed_after_appending(folder, [[row("d1")]])
    database = Database(database_url)
    await database.migrate()
    journal = Journal(folder)
    cards = IssuedCards(database, timedelta(days=30), journal)
    await cards.recover()
    async with database.sessions() as session:
        stored = (await session.scalars(select(IssuedCardRow))).one()
    assert (stored.card_uuid, stored.rule_id, stored.issued_at.replace(tzinfo=UTC)) == ("d1", "REV-ODDS", T)
    assert stored.suggestions is None
    journal.close()
    assert list(folder.iterdir()) == []
    await database.close()


async def test_rows_stay_journaled_while_the_database_is_away(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}")  # not migrated: inserts fail
    journal = Journal(folder)
    cards = IssuedCards(database, timedelta(days=30), journal)
    cards.remember("postfusion-pain-order-sign", [card("e1")], T)
    with pytest.raises(OperationalError):
        await cards.flush()
    journal.close()  # the process stops with the database still away
    await database.close()

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}")
    await database.migrate()
    journal = Journal(folder)
    cards = IssuedCards(database, timedelta(days=30), journal)
    await cards.recover()
    assert await rules_of(IssuedCards(database, timedelta(days=30)), ["e1"]) == {"e1": "REV-MET"}
    journal.close()
    assert list(folder.iterdir()) == []
    await database.close()


def test_a_folder_that_cannot_be_written_is_refused_naming_it_and_the_uid(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be")
    folder = blocker / "journal"
    for attempt in (lambda: check_writable(folder), lambda: Journal(folder)):
        with pytest.raises(JournalUnwritable) as refused:
            attempt()
        assert str(folder) in str(refused.value)
        assert f"uid {os.getuid()}" in str(refused.value)


def test_serve_refuses_to_start_on_a_folder_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    env = {
        "PATH": os.environ["PATH"],
        "CDS_AUTH": "off",
        "CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.sqlite3'}",
        "CDS_CARD_JOURNAL_DIR": str(tmp_path / "data" / "journal"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "cds_service", "serve", "--port", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert f"{tmp_path / 'data' / 'journal'} cannot be written by uid {os.getuid()}" in done.stderr
