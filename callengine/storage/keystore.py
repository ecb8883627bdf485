"""The recording keystore (KeyStore): the sealed per-recording keys, in a SQLite file kept apart
from the store and from its backups."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from callengine.storage.sql import chunks, marks
from callengine.storage.transactions import transaction


class KeyStore:
    """The recording keystore: one sealed key per recording, in its own SQLite file.

    Kept apart from the store and from backups on purpose: deleting a recording's entry here
    is what crypto-shreds it — every copy of the file, backups included, becomes undecryptable.
    Back the keystore up on its own, short-lived schedule (docs/backup.md)."""

    def __init__(self, db: aiosqlite.Connection):
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | str) -> AsyncIterator[KeyStore]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA secure_delete=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute(
                "CREATE TABLE IF NOT EXISTS recording_keys ("
                " recording_id TEXT PRIMARY KEY, sealed_key BLOB NOT NULL, created_at REAL)"
            )
            os.chmod(path, 0o600)
            yield cls(db)
        finally:
            await db.close()

    async def put(self, recording_id: str, sealed_key: bytes, now: float) -> None:
        async with self._lock:
            await self._db.execute(
                "INSERT INTO recording_keys (recording_id, sealed_key, created_at)"
                " VALUES (?, ?, ?)",
                (recording_id, sealed_key, now),
            )

    async def get(self, recording_id: str) -> bytes | None:
        async with self._db.execute(
            "SELECT sealed_key FROM recording_keys WHERE recording_id = ?", (recording_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else bytes(row[0])

    async def delete(self, recording_ids: list[str], *, truncate_log: bool = True) -> None:
        """Destroy the keys (overwritten in the file, log truncated): the shred itself. A
        purge deleting batch after batch truncates the log once at its end (truncate_log)."""
        async with self._lock:
            async with transaction(self._db) as db:
                for chunk in chunks(recording_ids):
                    await db.execute(
                        f"DELETE FROM recording_keys WHERE recording_id IN ({marks(len(chunk))})",
                        chunk,
                    )
            if truncate_log:
                await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def truncate_log(self) -> None:
        """Fold the log into the file (secure_delete has zeroed the deleted keys there) and
        empty it, so no copy of a deleted key is left in it."""
        async with self._lock:
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def count(self) -> int:
        async with self._db.execute("SELECT COUNT(*) FROM recording_keys") as cursor:
            return (await cursor.fetchone())[0]
