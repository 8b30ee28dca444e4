"""An append-only local journal of rows written behind, so a process killed with rows still in its buffer
(kill -9, an OOM kill) loses none of them: the next process to start on the folder replays them.

Each process has a random id, a lock file `<id>.lock` it holds under an exclusive flock for as long as it
lives, and segments `<id>-<n>.jsonl` of JSON lines, one row a line. `append` writes the rows of one response
in one write(2). `seal` starts a new segment, so the rows a flush takes are exactly those of the segments it
sealed: `settle` deletes them once committed, `restore` keeps them when the database is away. At start a
process adopts the segments of every id whose lock it can take (the kernel drops a flock with the last
descriptor of a dead process), holding that lock until they are settled, so workers and replicas that share
the folder never replay the same segment at once, nor one of a live process.

No fsync: the writes of a killed process are in the page cache and reach the file. A power loss or a kernel
crash can still lose the rows the kernel had not yet written back (seconds of them, or those of a database
outage that lasted across it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .folders import write_error

log = logging.getLogger("cds_service.store")

CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC


class JournalUnwritable(ValueError):
    """The journal folder cannot be written: start-up stops rather than run without the guarantee."""

    def __init__(self, folder: Path, error: OSError) -> None:
        super().__init__(
            f"the issued-card journal folder {folder.resolve()} cannot be written by uid {os.getuid()} "
            f"({error.strerror or type(error).__name__}): make it writable (a volume at /app/data in the "
            "image), choose another with CDS_CARD_JOURNAL_DIR, or set CDS_CARD_JOURNAL_DIR= (empty) to run "
            "without it, losing the cards a killed process had not written yet"
        )


def check_writable(folder: Path) -> None:
    """Make the folder and write a file in it, or raise JournalUnwritable (for a check before start-up)."""
    if (error := write_error(folder)) is not None:
        raise JournalUnwritable(folder, error)


@dataclass
class Batch:
    """Segments whose rows one flush took, and the locks of the dead processes they were adopted from
    (released once their segments are gone)."""

    segments: list[Path] = field(default_factory=list)
    locks: list[tuple[Path, int]] = field(default_factory=list)


class Journal:
    """This process's segments in a folder shared with other workers and replicas."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._id = uuid.uuid4().hex
        self._serial = 0
        self._unsettled = Batch()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._lock_path, self._lock = self._take_lock()
            self._path, self._fd = self._open_segment()
        except OSError as error:
            raise JournalUnwritable(folder, error) from None
        self._written = False

    def _take_lock(self) -> tuple[Path, int]:
        """Made under another name and renamed once locked: a `.lock` that can be locked is a dead one's."""
        lock = self.folder / f"{self._id}.lock"
        part = lock.with_suffix(".part")
        fd = os.open(part, CREATE, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(part, lock)
        return lock, fd

    def _open_segment(self) -> tuple[Path, int]:
        self._serial += 1
        path = self.folder / f"{self._id}-{self._serial:08d}.jsonl"
        return path, os.open(path, CREATE, 0o600)

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write rows (JSON values; datetimes as ISO 8601) to the current segment in one write. A failing
        disk is logged, not raised: the rows are still in the caller's buffer, only the guarantee is lost."""
        if not rows:
            return
        data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError as error:
            log.error("issued cards not journaled (%d rows): %s", len(rows), error.strerror)
        self._written = True

    def seal(self) -> Batch:
        """Take the segments holding the rows buffered until now, and start a new one for the next. When no
        new one can be made, the current one stays (its rows are replayed again if need be: idempotent)."""
        batch, self._unsettled = self._unsettled, Batch()
        if self._written:
            try:
                path, fd = self._open_segment()
            except OSError as error:
                log.error("issued-card journal segment not rotated: %s", error.strerror)
                return batch
            os.close(self._fd)
            batch.segments.append(self._path)
            self._path, self._fd, self._written = path, fd, False
        return batch

    def restore(self, batch: Batch) -> None:
        """Their rows went back to the buffer (not committed): keep the segments for the next flush."""
        self._unsettled.segments[:0] = batch.segments
        self._unsettled.locks[:0] = batch.locks

    def settle(self, batch: Batch) -> None:
        """Their rows are committed (or refused for good): delete the segments, release adopted locks."""
        for segment in batch.segments:
            segment.unlink(missing_ok=True)
        for path, fd in batch.locks:
            path.unlink(missing_ok=True)
            os.close(fd)

    def adopt(self) -> list[dict[str, Any]]:
        """The rows of every dead process's segments, which this process now holds until settled. A torn
        last line (the process died inside a write) is skipped: its response was never sent."""
        rows: list[dict[str, Any]] = []
        unreadable = 0
        for lock in sorted(self.folder.glob("*.lock")):
            if lock == self._lock_path:
                continue
            try:
                fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # settled by another process meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # alive
                os.close(fd)
                continue
            segments = sorted(self.folder.glob(f"{lock.stem}-*.jsonl"))
            found = len(rows)
            for segment in segments:
                for line in segment.read_bytes().splitlines():
                    try:
                        rows.append(orjson.loads(line))
                    except orjson.JSONDecodeError:
                        unreadable += 1
            adopted = Batch(segments, [(lock, fd)])
            if len(rows) > found:
                self.restore(adopted)
            else:  # nothing to replay (it died idle): no flush would come to delete them
                self.settle(adopted)
        if rows or unreadable:
            log.warning(
                "replaying %d journaled rows of stopped processes (%d torn lines)", len(rows), unreadable
            )
        return rows

    def close(self) -> None:
        """At shutdown, after the last flush: delete what is settled; the rest stays for the next start."""
        if not self._written:
            self._path.unlink(missing_ok=True)
        if not self._written and not self._unsettled.segments:
            self._lock_path.unlink(missing_ok=True)
        os.close(self._fd)
        for _, fd in self._unsettled.locks:
            os.close(fd)
        os.close(self._lock)


class NoJournal:
    """CDS_CARD_JOURNAL_DIR empty: nothing is journaled, and a killed process loses the rows it buffered."""

    def append(self, rows: list[dict[str, Any]]) -> None:
        pass

    def seal(self) -> Batch:
        return Batch()

    def restore(self, batch: Batch) -> None:
        pass

    def settle(self, batch: Batch) -> None:
        pass

    def adopt(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass
