"""The one transaction helper: an async form over aiosqlite (the Store, the KeyStore) and a sync
form over sqlite3 (PurgeBatches' worker thread), with the same rules.

- `BEGIN IMMEDIATE`: the write lock is taken at the start, so a transaction never fails half
  way for another writer (and a crash leaves either the old or the new rows, never a mix);
- any exception, `CancelledError` and `KeyboardInterrupt` included, rolls back; also one
  raised while waiting for BEGIN: aiosqlite's thread runs the BEGIN all the same, and a
  transaction left open would fail every later one on the connection;
- otherwise COMMIT (a COMMIT that fails is rolled back too, so the connection stays usable).

Neither form takes a lock of its own: the caller holds whatever keeps the connection's users
from interleaving (the Store's write lock, the KeyStore's lock).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import aiosqlite

BEGIN, COMMIT, ROLLBACK = "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"


@asynccontextmanager
async def transaction(db: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    try:
        await db.execute(BEGIN)
        yield db
        await db.execute(COMMIT)
    except BaseException:
        try:
            await db.execute(ROLLBACK)
        except sqlite3.OperationalError:
            pass  # no transaction (BEGIN failed, or SQLite ended it): raise what led here
        raise


@contextmanager
def sync_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:
        db.execute(BEGIN)
        yield db
        db.execute(COMMIT)
    except BaseException:
        try:
            db.execute(ROLLBACK)
        except sqlite3.OperationalError:
            pass  # no transaction (BEGIN failed, or SQLite ended it): raise what led here
        raise
