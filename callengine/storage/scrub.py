"""Erasure that is true or fails loudly: checked checkpoints, and the scrub-pending marker.

SQLite in WAL mode keeps a deleted row's old page images in the `-wal` file until a checkpoint
folds the log into the database (where secure_delete has zeroed them) and truncates it. A
checkpoint can't do that while another connection holds a read transaction: it answers busy,
and a busy answer ignored is an erasure that did not happen. So every checkpoint here is
checked, retried a few times with backoff, and then reported (`ErasureIncomplete`).

What could not be finished is written to a marker beside the database
(`<database>-scrub-pending`, JSON: `{"since": <unix time>, "subjects": [<subject id>, …]}`:
subject keys still to delete, and the logs still to truncate), which the next erasure, purge
or engine start retries (`Store.scrub_pending`) until it is done, then removes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from pathlib import Path

import aiosqlite

from callengine.errors import ErasureIncomplete

log = logging.getLogger(__name__)

MARKER_SUFFIX = "-scrub-pending"
# After the first attempt (whose busy handler waits SCRUB_BUSY_MS), wait this long and try again.
RETRY_DELAYS_S = (0.1, 0.4, 1.0)
SCRUB_BUSY_MS = 1000  # the busy handler's wait for one attempt (the connections' own: 5 s)


def marker_path(database: Path) -> Path:
    return database.with_name(database.name + MARKER_SUFFIX)


def read_marker(database: Path) -> dict | None:
    try:
        return json.loads(marker_path(database).read_text())
    except FileNotFoundError:
        return None
    except ValueError:  # a torn write: scrub everything again
        return {"since": time.time(), "subjects": []}


def write_marker(database: Path, subjects: list[str] | set[str] = ()) -> None:
    """Record (durably) that an erasure is not complete: the logs to truncate again, and the
    subject keys still to delete (merged with what an earlier marker held)."""
    earlier = read_marker(database) or {}
    marker = {"since": earlier.get("since", time.time()),
              "subjects": sorted(set(earlier.get("subjects", [])) | set(subjects))}
    path = marker_path(database)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(marker, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def clear_marker(database: Path) -> None:
    marker_path(database).unlink(missing_ok=True)


async def checkpoint_truncate(db: aiosqlite.Connection, what: str) -> None:
    """Fold the WAL into the database and truncate it, or raise ErasureIncomplete. (A database
    not in WAL mode answers -1: nothing to fold, its deletes were made in place.)"""
    await db.execute(f"PRAGMA busy_timeout={SCRUB_BUSY_MS}")
    try:
        for delay in (*RETRY_DELAYS_S, None):
            # main only: the journal's connection has the store attached read-only, and a
            # checkpoint of that (what a bare wal_checkpoint also does) fails to write.
            async with db.execute("PRAGMA main.wal_checkpoint(TRUNCATE)") as cursor:
                busy, frames, done = await cursor.fetchone()
            if busy == 0 and frames == done:
                return
            if delay is None:
                raise ErasureIncomplete(
                    f"{what}: the write-ahead log could not be truncated (another connection"
                    f" holds a read transaction; {frames} page image(s) kept, {done} folded):"
                    " deleted data may still be in its -wal file; retried by the next erasure,"
                    " purge or engine start")
            await asyncio.sleep(delay)
    finally:
        await db.execute("PRAGMA busy_timeout=5000")


async def retry_busy(operation, what: str):
    """Run `operation()` (an async write) again on SQLite's busy answer, with backoff; then
    ErasureIncomplete."""
    for delay in (*RETRY_DELAYS_S, None):
        try:
            return await operation()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if delay is None:
                raise ErasureIncomplete(
                    f"{what}: the database stayed locked by another connection ({exc}); nothing"
                    " was deleted; try again") from exc
            await asyncio.sleep(delay)
