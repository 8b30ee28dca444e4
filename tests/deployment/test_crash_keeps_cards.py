"""Issued cards survive kill -9 (#17, 9): the attack killed a worker right after 80 answered calls and all 80
cards were gone (they waited in the 0.5 s write-behind buffer), so their feedback could not be attributed.
Here `cds-service serve` is killed with SIGKILL at once after its calls answered 200, started again on the
same database and journal folder, and every card it issued must be found."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from cds_service.store import Database, IssuedCards

from support.hooks import SERVICES, hook_request
from support.issued import rules_of
from support.service_process import ServiceProcess, service_process
from support.waiting import WaitTimeout, wait_for

CALL = f"/cds-services/{SERVICES['order-sign']}"
CALLS = 80


def kill(service: ServiceProcess) -> None:
    """SIGKILL to the whole process group: nothing runs its shutdown, as in an OOM kill or a node loss."""
    with_group = service.process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(with_group, signal.SIGKILL)
    service.process.wait(timeout=10)

    def gone() -> bool:
        try:
            os.killpg(with_group, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, timeout=10, interval=0.02, what="every process of the killed service to be gone")


def issue(service: ServiceProcess) -> list[str]:
    """CALLS order-sign calls, 8 at a time, each answered 200 with cards: the uuids of all their cards."""

    def call(_: int) -> list[str]:
        with httpx.Client() as client:  # a connection per call, spread over the workers
            response = client.post(service.base + CALL, json=hook_request("order-sign"), timeout=30)
        assert response.status_code == 200, response.text
        cards = response.json()["cards"]
        assert cards
        return [card["uuid"] for card in cards]

    with ThreadPoolExecutor(8) as pool:
        return [uuid for uuids in pool.map(call, range(CALLS)) for uuid in uuids]


def stored(tmp_path: Path, uuids: list[str]) -> set[str]:
    """The uuids the database knows (read apart from the service, as another replica would)."""

    async def lookup() -> set[str]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'cds.sqlite3'}")
        try:
            return set(await rules_of(IssuedCards(database, timedelta(days=30)), uuids))
        finally:
            await database.close()

    return asyncio.run(lookup())


@pytest.mark.parametrize("workers", [1, 2])
def test_every_card_answered_before_a_kill_9_is_found_after_the_restart(tmp_path: Path, workers: int) -> None:
    journal = {"CDS_CARD_JOURNAL_DIR": str(tmp_path / "journal")}
    with service_process(tmp_path, workers, **journal) as first:
        uuids = issue(first)
        kill(first)

    with service_process(tmp_path, workers, **journal):
        try:
            found = wait_for(
                lambda: len(stored(tmp_path, uuids)) == len(uuids),
                timeout=10,
                what=f"all {len(uuids)} cards in the database",
            )
        except WaitTimeout:
            found = False
        lost = len(uuids) - len(stored(tmp_path, uuids))
        assert found, f"{lost} of {len(uuids)} cards issued before the kill were lost"
        wait_for(  # the dead processes' segments are deleted once replayed: what is left is the live workers'
            lambda: len(list((tmp_path / "journal").glob("*.jsonl"))) <= workers,
            timeout=10,
            what="the replayed journal segments to be deleted",
        )
