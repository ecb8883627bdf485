"""What every part of the SQLite Store shares: its connection, the field cipher, the keystore
with the data subjects' keys, the write lock and the transaction on them. The query mixins
(storage/queries/, intake.py) build on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from callengine.crypto import FieldCipher
from callengine.crypto.fields import SubjectCipher
from callengine.model import Lead
from callengine.storage.keystore import KeyStore
from callengine.storage.rows import to_lead
from callengine.storage.transactions import transaction

# Subject keys kept unwrapped in memory at most (a lead read or added needs its subject's).
SUBJECT_CACHE = 100_000


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
        self._keys: KeyStore | None = None  # the keystore: subject keys (see Store.open)
        self._subject_ciphers: dict[str, SubjectCipher] = {}  # the cache, by subject id
        # New subjects this process journaled (their wrapped keys ride in the journal, to the
        # keystore with the mover's next batch): number hash → (subject id, cipher).
        self._new_subjects: dict[str, tuple[str, SubjectCipher]] = {}

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self.write_lock, transaction(self._db) as db:
            yield db

    async def _ciphers(self, subject_ids) -> dict[str, SubjectCipher]:
        """The keys of those subjects that have one (an erased subject has none), from the
        cache or the keystore."""
        wanted = set(subject_ids)
        found = {sid: self._subject_ciphers[sid] for sid in wanted
                 if sid in self._subject_ciphers}
        missing = [sid for sid in wanted if sid not in found and sid is not None]
        if missing:
            assert self._keys is not None
            for sid, wrapped in (await self._keys.subject_keys(missing)).items():
                found[sid] = self._cache(sid, self._cipher.subject_cipher(sid, wrapped))
        return found

    def _cache(self, subject_id: str, cipher: SubjectCipher) -> SubjectCipher:
        if len(self._subject_ciphers) >= SUBJECT_CACHE:
            self._subject_ciphers.clear()
        self._subject_ciphers[subject_id] = cipher
        return cipher

    async def _rows_ciphers(self, rows) -> dict[str, SubjectCipher]:
        return await self._ciphers(row["subject_id"] for row in rows)

    async def _leads(self, sql: str, params: tuple) -> list[Lead]:
        """The leads a `SELECT * FROM leads …` finds, their fields decrypted."""
        async with self._db.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        ciphers = await self._rows_ciphers(rows)
        return [to_lead(row, ciphers) for row in rows]

    async def _settled(self) -> None:
        """Reads of leads call this first (intake.IntakeJournal: they wait for the move of
        what this process journaled)."""
