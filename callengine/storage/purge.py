"""The retention purge's batches: PurgeBatches, a plain sqlite3 connection on a worker thread of
its own, and the purge's statements, which the Store's counts (queries/retention.py) share."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from callengine.model import LEAD_DONE
from callengine.storage import outbox
from callengine.storage.sql import chunks, marks
from callengine.storage.transactions import sync_transaction

# The purge folds the WAL back at most this often: pages that every batch rewrites (B-tree
# interior pages, the pages it is emptying) then reach the database once a second rather than
# once a batch. bench/bench_purge.py: 200k leads, checkpoints after each batch wrote 3.9 KB per
# lead to the disk, once a second 2.5 KB, and ran 40 % faster.
PURGE_CHECKPOINT_EVERY_S = 1.0

# Live recordings started before ? of widget ?. CROSS JOIN keeps SQLite walking the partial
# index of live recordings (measured: the plain join walked every lead of the widget and
# re-skipped the deleted recordings).
EXPIRED_RECORDINGS = (
    "FROM recordings r CROSS JOIN leads l ON l.id = r.lead_id"
    " WHERE r.status NOT IN ('deleted', 'recording') AND r.started_at < ? AND l.widget_id = ?"
)
# Closed leads of widget ? created before ? (open ones are never purged).
EXPIRED_LEADS = f"FROM leads WHERE widget_id = ? AND status = '{LEAD_DONE}' AND created_at < ?"


def live_recordings_of(leads: int) -> str:
    return f"SELECT id FROM recordings WHERE lead_id IN ({marks(leads)}) AND status != 'deleted'"


def purge_statements(leads: int) -> tuple[str, str]:
    """(tombstone, delete) for that many lead ids; the tombstone takes (now, reason, *ids)."""
    ids = marks(leads)
    return (
        "INSERT OR REPLACE INTO lead_tombstones (id, widget_id, created_at, closed_at, outcome,"
        " attempts, consent_marketing, consent_recording, clause_version, clause_sha256,"
        " clause_language, notice_version, purged_at, reason)"
        " SELECT id, widget_id, created_at, closed_at, outcome, attempts, consent_marketing,"
        " consent_recording, clause_version, clause_sha256, clause_language, notice_version,"
        f" ?, ? FROM leads WHERE id IN ({ids})",
        f"DELETE FROM leads WHERE id IN ({ids})",
    )


class PurgeBatches:
    """The retention purge's hot path: a plain sqlite3 connection driven from one worker
    thread, so that each batch is a single trip to that thread. (Through aiosqlite, every
    statement, fetch and cursor close is a trip of its own, about twelve a batch, and the
    purge's SQLite thread sat idle half the time: bench/bench_purge.py.) Writes take the
    store's write lock, so the engine's writers and the purge take turns instead of polling
    SQLite's lock (in the engine's purge process the lock is purge_child.TurnLock)."""

    def __init__(self, path: Path, write_lock: asyncio.Lock,
                 thread_initializer: Callable[[], None] | None = None):
        self._path = path
        self._write_lock = write_lock
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="purge-sqlite",
                                          initializer=thread_initializer)
        self._db: sqlite3.Connection | None = None
        # Checkpoints run beside the batches, on a connection and thread of their own.
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="purge-checkpoint",
                                                initializer=thread_initializer)
        self._checkpoint_db: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Future[None] | None = None
        self._checkpointed_at = time.monotonic()

    async def open(self) -> None:
        self._db = await self._call(self._connect)
        self._checkpoint_db = await asyncio.get_running_loop().run_in_executor(
            self._checkpointer, self._connect)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._checkpointing is not None:
                await self._checkpointing
            if self._checkpoint_db is not None:
                # The last batches' pages too, so that no intake commit finds them to fold.
                await loop.run_in_executor(self._checkpointer, self._checkpoint)
                await loop.run_in_executor(self._checkpointer, self._checkpoint_db.close)
            if self._db is not None:
                await self._call(self._db.close)
        finally:
            self._checkpointer.shutdown(wait=False)
            self._thread.shutdown(wait=False)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        # synchronous=FULL: each batch's commit syncs the WAL, so a batch is durable when its
        # turn ends and the purge's pages reach the disk in batch-sized steps, on its own time
        # (bench/bench_purge.py: no slower than NORMAL, intake alike). wal_autocheckpoint=0:
        # its commits never fold the WAL; `checkpoint` does, beside them.
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=5000",
                       "secure_delete=ON", "synchronous=FULL", "wal_autocheckpoint=0"):
            db.execute(f"PRAGMA {pragma}")
        return db

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def expired_recordings(self, widget_id: str, cutoff: float, limit: int) -> list[str]:
        return await self._call(self._select, f"SELECT r.id {EXPIRED_RECORDINGS} LIMIT ?",
                                (cutoff, widget_id, limit))

    async def mark_recordings_deleted(self, recording_ids: list[str], now: float) -> None:
        async with self._write_lock:
            await self._call(self._mark_deleted, recording_ids, now)

    async def expired_leads(self, widget_id: str, cutoff: float, limit: int
                            ) -> tuple[list[str], list[str]]:
        """Up to `limit` expired leads of the widget, oldest first, and their live recordings,
        whose keys must go before the leads' rows (purge_leads). Reads only: no write lock."""
        return await self._call(self._expired_leads, widget_id, cutoff, limit)

    async def subjects_of(self, lead_ids: list[str]) -> set[str]:
        """The data subjects of these leads (whose keys go once no lead names them)."""
        return {sid for chunk in chunks(lead_ids) for sid in await self._call(
            self._select, f"SELECT DISTINCT subject_id FROM leads WHERE id IN"
            f" ({marks(len(chunk))})", tuple(chunk))}

    async def purge_leads(self, lead_ids: list[str], now: float, reason: str) -> int:
        async with self._write_lock:
            return await self._call(self._purge, lead_ids, now, reason)

    def after_batch(self) -> None:
        """Called after each batch: at most every PURGE_CHECKPOINT_EVERY_S, unless the last one
        still runs, start a checkpoint on its own thread (PASSIVE: it never waits for anyone).
        So the WAL is folded on the purge's time, never by an intake commit that finds it past
        store.WAL_AUTOCHECKPOINT_PAGES. (A checkpoint after each batch, awaited, took a quarter
        of the purge's time; one after each batch beside them wrote 1.6x the bytes.)"""
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        moment = time.monotonic()
        if moment - self._checkpointed_at < PURGE_CHECKPOINT_EVERY_S:
            return
        self._checkpointed_at = moment
        self._checkpointing = asyncio.get_running_loop().run_in_executor(
            self._checkpointer, self._checkpoint)

    # ---- in the worker thread --------------------------------------------------------------

    def _select(self, sql: str, params: tuple) -> list[str]:
        assert self._db is not None
        return [row[0] for row in self._db.execute(sql, params)]

    def _mark_deleted(self, recording_ids: list[str], now: float) -> None:
        assert self._db is not None
        with sync_transaction(self._db):
            self._db.executemany(
                "UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = ?",
                [(now, rid) for rid in recording_ids])

    def _expired_leads(self, widget_id: str, cutoff: float, limit: int
                       ) -> tuple[list[str], list[str]]:
        lead_ids = self._select(f"SELECT id {EXPIRED_LEADS} ORDER BY created_at LIMIT ?",
                                (widget_id, cutoff, limit))
        recording_ids = [rid for chunk in chunks(lead_ids)
                         for rid in self._select(live_recordings_of(len(chunk)), tuple(chunk))]
        return lead_ids, recording_ids

    def _purge(self, lead_ids: list[str], now: float, reason: str) -> int:
        assert self._db is not None
        purged = 0
        with sync_transaction(self._db):
            for chunk in chunks(lead_ids):
                tombstone, delete = purge_statements(len(chunk))
                self._db.execute(tombstone, (now, reason, *chunk))
                purged += self._db.execute(delete, chunk).rowcount
            if purged:  # webhooks: lead.purged, in the batch's transaction
                outbox.write(self._db, *outbox.purged(reason, lead_ids, now))
        return purged

    def _checkpoint(self) -> None:
        assert self._checkpoint_db is not None
        try:
            self._checkpoint_db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.OperationalError:
            pass  # busy: the next one will do it
