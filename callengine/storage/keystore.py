"""The keystore (KeyStore): the sealed per-recording keys and the data subjects' keys with the
number → subject index, in a SQLite file kept apart from the store and from its backups."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from callengine.storage import scrub
from callengine.storage.sql import chunks, marks
from callengine.storage.transactions import sync_transaction, transaction

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS recording_keys ("
    " recording_id TEXT PRIMARY KEY, sealed_key BLOB NOT NULL, created_at REAL)",
    # One row a data subject: the keyed hash of their number (the only place it is kept: a
    # store's backup holds the data key, with which a number's hash is brute-forced in
    # minutes), and their key, wrapped with the store's data key (crypto.fields).
    "CREATE TABLE IF NOT EXISTS subject_keys ("
    " subject_id TEXT PRIMARY KEY, number_hash TEXT NOT NULL UNIQUE,"
    " wrapped_key BLOB NOT NULL, created_at REAL NOT NULL)",
)


ERASURES_SUFFIX = "-erasures"  # replaced (a new inode) after every deletion of subject keys


class KeyStore:
    """The keystore: one sealed key per recording and one wrapped key per data subject, in
    their own SQLite file.

    Kept apart from the store and from backups on purpose: deleting an entry here is what
    crypto-shreds a recording or erases a person — every copy of the file or of the store's
    rows, backups included, becomes undecryptable. Back the keystore up on its own,
    short-lived schedule (docs/backup.md).

    WAL, as the store: readers (intake looking up a new number's subject) never wait for a
    writer (a purge deleting a million subjects' keys), where a rollback journal's exclusive
    lock made intake wait out every keystore commit (bench_purge --quick: intake p99 during a
    purge 12-14x idle). In WAL mode a delete commits into the -wal file, which keeps the
    deleted key until a checkpoint folds and truncates it, and a checkpoint can't while another
    connection reads: so every delete here ends with a checked truncation of the log
    (scrub.checkpoint_truncate), which raises ErasureIncomplete when it can't, and the store's
    scrub-pending marker has it retried (Store.forget_deleted_pages, scrub_pending).
    """

    def __init__(self, db: aiosqlite.Connection, path: Path):
        self._db = db
        self._lock = asyncio.Lock()
        self.path = path
        self._erasures = str(path.with_name(path.name + ERASURES_SUFFIX))  # stat per lead

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | str) -> AsyncIterator[KeyStore]:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute("PRAGMA secure_delete=ON")
            await db.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                await db.execute(statement)
            os.chmod(path, 0o600)
            yield cls(db, path)
        finally:
            await db.close()

    async def _one(self, sql: str, params: tuple = ()) -> Any:
        """One row, in one trip to the connection's thread: a statement left open over awaits
        would put another task's write transaction inside its snapshot (StoreBase._fetch)."""
        rows = await self._db.execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def journal_mode(self) -> str:
        return (await self._one("PRAGMA journal_mode"))[0]

    # ---- recordings --------------------------------------------------------------------------

    async def put(self, recording_id: str, sealed_key: bytes, now: float) -> None:
        async with self._lock:
            await self._db.execute(
                "INSERT INTO recording_keys (recording_id, sealed_key, created_at)"
                " VALUES (?, ?, ?)",
                (recording_id, sealed_key, now),
            )

    async def get(self, recording_id: str) -> bytes | None:
        row = await self._one(
            "SELECT sealed_key FROM recording_keys WHERE recording_id = ?", (recording_id,))
        return None if row is None else bytes(row[0])

    async def delete(self, recording_ids: list[str], *, truncate_log: bool = True) -> None:
        """Destroy the keys: deleted with their bytes zeroed in the file (secure_delete) and
        the log truncated, checked; or ErasureIncomplete (after a few tries). A purge deleting
        batch after batch truncates the log once, at its end (truncate_log=False)."""
        await self._delete("recording_keys", "recording_id", recording_ids, "shredding keys")
        if truncate_log:
            await self.truncate_log()

    async def truncate_log(self) -> None:
        """Fold the log into the file and empty it, checked (ErasureIncomplete otherwise).
        A keystore a process opened in rollback-journal mode has no log: nothing to do."""
        async with self._lock:
            if await self.journal_mode() == "wal":
                await scrub.checkpoint_truncate(self._db, "keystore")

    async def count(self) -> int:
        return (await self._one("SELECT COUNT(*) FROM recording_keys"))[0]

    # ---- data subjects -----------------------------------------------------------------------

    async def subject_by_hash(self, number_hash: str) -> tuple[str, bytes] | None:
        """(subject id, wrapped key) of the number whose keyed hash this is."""
        row = await self._one(
            "SELECT subject_id, wrapped_key FROM subject_keys WHERE number_hash = ?",
            (number_hash,))
        return None if row is None else (row[0], bytes(row[1]))

    async def subject_keys(self, subject_ids: list[str]) -> dict[str, bytes]:
        """The wrapped keys of those subjects that still have one."""
        found: dict[str, bytes] = {}
        for chunk in chunks(subject_ids):
            rows = await self._db.execute_fetchall(  # one trip to the connection's thread
                f"SELECT subject_id, wrapped_key FROM subject_keys"
                f" WHERE subject_id IN ({marks(len(chunk))})", chunk)
            found.update({row[0]: bytes(row[1]) for row in rows})
        return found

    async def put_subjects(self, subjects: list[tuple[str, str, bytes, float]]) -> None:
        """(subject id, number hash, wrapped key, created at) of new subjects, in one
        transaction (one commit for a batch of new leads); a subject already kept is skipped."""
        if not subjects:
            return
        def put(conn: sqlite3.Connection) -> None:  # the transaction in one trip to the thread
            with sync_transaction(conn):
                conn.executemany(
                    "INSERT OR IGNORE INTO subject_keys (subject_id, number_hash, wrapped_key,"
                    " created_at) VALUES (?, ?, ?, ?)", subjects)

        async with self._lock:
            await self._db._execute(put, self._db._conn)

    async def delete_subjects(self, subject_ids: list[str]) -> None:
        """Erase the subjects: their keys and number hashes zeroed in the file, or
        ErasureIncomplete with nothing deleted. Then the erasures mark moves (every process's
        cache of subjects is stale: storage/base.py)."""
        if not subject_ids:
            return
        try:
            await self._delete("subject_keys", "subject_id", subject_ids,
                               "erasing subject keys")
        finally:
            await asyncio.to_thread(self._bump_erasures)
        await self.truncate_log()

    def erasures_mark(self) -> tuple[int, int] | None:
        """Cheap (one stat, no query, no lock): differs after every deletion of subject keys
        by any process since it was last read."""
        try:
            found = os.stat(self._erasures)
        except FileNotFoundError:
            return None
        return found.st_ino, found.st_mtime_ns

    def _bump_erasures(self) -> None:
        mark = self.path.with_name(self.path.name + ERASURES_SUFFIX)
        temporary = mark.with_name(f"{mark.name}.{os.urandom(6).hex()}.tmp")
        temporary.write_bytes(os.urandom(8))  # no personal data: only the file's identity counts
        os.replace(temporary, mark)

    async def subject_count(self) -> int:
        return (await self._one("SELECT COUNT(*) FROM subject_keys"))[0]

    async def _delete(self, table: str, column: str, ids: list[str], what: str) -> None:
        if not ids:
            return

        async def attempt() -> None:
            async with transaction(self._db) as db:
                for chunk in chunks(ids):
                    await db.execute(
                        f"DELETE FROM {table} WHERE {column} IN ({marks(len(chunk))})", chunk)

        async with self._lock:
            await self._db.execute(f"PRAGMA busy_timeout={scrub.SCRUB_BUSY_MS}")
            try:
                await scrub.retry_busy(attempt, f"keystore: {what}")
            finally:
                await self._db.execute("PRAGMA busy_timeout=5000")
