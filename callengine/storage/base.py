"""What every part of the SQLite Store shares: its connection, the field cipher, the write lock
and the transaction on them. The query mixins (storage/queries/, intake.py) build on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from callengine.crypto import FieldCipher
from callengine.storage.transactions import transaction


class StoreBase:
    def __init__(self, db: aiosqlite.Connection, cipher: FieldCipher,
                 write_lock: asyncio.Lock | None = None):
        self._db = db
        self._cipher = cipher
        # One connection serves every task: transactions must not interleave on it. Stores of
        # one process on the same database share the lock (see `Store.open`).
        self.write_lock = write_lock or asyncio.Lock()
        self._path: Path | None = None
        self._journal: aiosqlite.Connection | None = None  # the intake journal (see open)
        self._journal_lock = asyncio.Lock()  # its writers in this process, in turn
        self._journaled: set[str] = set()  # leads this process journaled, not yet moved
        self._moving = asyncio.Lock()
        self._mover: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self.write_lock, transaction(self._db) as db:
            yield db

    async def _settled(self) -> None:
        """Reads of leads call this first (intake.IntakeJournal: they wait for the move of
        what this process journaled)."""
