"""What every part of the SQLite Store shares: its connection, the field cipher, the keystore
with the data subjects' keys, the write lock and the transaction on them. The query mixins
(storage/queries/, intake.py) build on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from callengine.crypto import FieldCipher
from callengine.crypto.fields import SubjectCipher
from callengine.errors import NotFound
from callengine.model import Lead
from callengine.storage.keystore import KeyStore
from callengine.storage.rows import to_lead
from callengine.storage.transactions import sync_transaction, transaction

# Subject keys kept unwrapped in memory at most (a lead read or added needs its subject's).
SUBJECT_CACHE = 100_000
# Every visitor request reads its widget (and a lead its clause): those reads are cached this
# long. A change made through this Store clears the cache at once; one made by another process
# (the CLI) is seen within this time.
CONFIG_CACHE_S = 1.0
CONFIG_CACHE_MAX = 10_000  # entries (keys come from visitors: bounded)


@dataclass(frozen=True)
class _Missing:  # a NotFound in the config cache
    what: str
    key: str


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
        # intake's look-ups of a number's subject under way: number hash → done
        self._subject_lookups: dict[str, asyncio.Future[None]] = {}
        self._pending: list = []  # new leads waiting for the journal's group commit
        self._committer: asyncio.Task[None] | None = None  # the task that commits them
        self._pruned_at = 0.0  # when the limits' counters were last pruned
        self._journaled: set[str] = set()  # leads this process journaled, not yet moved
        self._moving = asyncio.Lock()
        # the task whose `_transaction` is open on the connection, and its end
        self._open_write: tuple[asyncio.Task | None, asyncio.Future[None]] | None = None
        self._mover: asyncio.Task[None] | None = None
        self._keys: KeyStore | None = None  # the keystore: subject keys (see Store.open)
        self._key_reader: KeyStore | None = None  # the same file, for intake's reads
        self._subject_ciphers: dict[str, SubjectCipher] = {}  # the cache, by subject id
        # number hash → subject id, for intake (no keystore lookup for a number seen before).
        # Both caches hold only while no subject was erased, by any process: each use checks
        # the keystore's erasures mark (a stat) and starts afresh when it moved.
        self._subject_ids: dict[str, str] = {}
        self._erasures_seen: tuple[int, int] | None = None
        # New subjects this process journaled (their wrapped keys ride in the journal, to the
        # keystore with the mover's next batch): number hash → (subject id, cipher, wrapped
        # key); each lead of such a subject carries its key until one of them has moved.
        self._new_subjects: dict[str, tuple[str, SubjectCipher, bytes]] = {}
        self._config_cache: dict[tuple, tuple[float, Any]] = {}  # key → (until, value)

    async def _cached(self, key: tuple, read: Callable[[], Awaitable[Any]]) -> Any:
        """read()'s value, or the NotFound it raised (a refusal is cached as well), at most
        CONFIG_CACHE_S old."""
        now = time.monotonic()
        found = self._config_cache.get(key)
        if found is None or found[0] <= now:
            try:
                value: Any = await read()
            except NotFound as exc:
                value = _Missing(exc.what, exc.key)
            if len(self._config_cache) >= CONFIG_CACHE_MAX:
                self._config_cache.clear()
            found = self._config_cache[key] = (now + CONFIG_CACHE_S, value)
        if isinstance(found[1], _Missing):
            raise NotFound(found[1].what, found[1].key)
        return found[1]

    def _config_changed(self) -> None:
        """After a write of widgets or clauses: the next reads go to the database."""
        self._config_cache.clear()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self.write_lock:
            ended = asyncio.get_running_loop().create_future()
            self._open_write = (asyncio.current_task(), ended)
            try:
                async with transaction(self._db) as db:
                    yield db
            finally:
                self._open_write = None
                ended.set_result(None)

    async def _after_open_write(self) -> None:
        """Before a read: wait while another task's transaction is open on the connection.
        SQLite shows a connection's uncommitted rows to every read on it, and a transaction
        that is cancelled or fails rolls them back: a lead read as queued again whose attempt
        then stayed open. (A transaction run in one trip to the thread is never seen half
        way; reads queued before a BEGIN run before it.)"""
        while (open_write := self._open_write) is not None \
                and open_write[0] is not asyncio.current_task():
            await asyncio.shield(open_write[1])

    async def _transaction_in_thread(self, function, *args):
        """`function(connection, *args)` in one transaction (transactions.sync_transaction),
        all of it in one trip to the connection's thread: BEGIN, the statements and COMMIT do
        not each wait for the thread, and for the GIL, while the event loop is busy. Once
        begun it runs to its end, committed or rolled back, even if the caller is cancelled
        meanwhile (the caller then does not learn which)."""
        def in_transaction(conn):
            with sync_transaction(conn):
                return function(conn, *args)

        async with self.write_lock:
            return await self._db._execute(in_transaction, self._db._conn)

    async def _ciphers(self, subject_ids) -> dict[str, SubjectCipher]:
        """The keys of those subjects that have one (an erased subject has none), from the
        cache or the keystore."""
        wanted = set(subject_ids)
        self._fresh_caches()
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

    def _remember_subject(self, number_hash: str, subject_id: str) -> None:
        if len(self._subject_ids) >= SUBJECT_CACHE:
            self._subject_ids.clear()
        self._subject_ids[number_hash] = subject_id

    def _fresh_caches(self) -> None:
        """Forget every cached subject when subject keys were deleted since the last look (an
        erasure or a purge, in this process or another): no key outlives its erasure here."""
        assert self._keys is not None
        mark = self._keys.erasures_mark()
        if mark != self._erasures_seen:
            self._subject_ids.clear()
            self._subject_ciphers.clear()
            self._erasures_seen = mark

    def _forget_cached(self, subject_ids) -> None:
        gone = set(subject_ids)
        for subject_id in gone:
            self._subject_ciphers.pop(subject_id, None)
        self._subject_ids = {h: s for h, s in self._subject_ids.items() if s not in gone}
        self._new_subjects = {h: s for h, s in self._new_subjects.items() if s[0] not in gone}

    async def _rows_ciphers(self, rows) -> dict[str, SubjectCipher]:
        return await self._ciphers(row["subject_id"] for row in rows)

    async def _fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Rows of a read outside any transaction, in one trip to the connection's thread.

        Not `async with self._db.execute(...) as cursor`: that statement stays open over the
        awaits of its fetch and close, and a write another task begins on the shared
        connection meanwhile would begin inside the read's snapshot. Once another process has
        committed since, BEGIN IMMEDIATE then fails at once with "database is locked"
        (SQLITE_BUSY_SNAPSHOT: no busy wait), seen with two engines on one file."""
        await self._after_open_write()
        return list(await self._db.execute_fetchall(sql, tuple(params)))

    async def _fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self._fetch(sql, params)
        return rows[0] if rows else None

    async def _leads(self, sql: str, params: tuple) -> list[Lead]:
        """The leads a `SELECT * FROM leads …` finds, their fields decrypted."""
        await self._after_open_write()
        rows = await self._db.execute_fetchall(sql, params)  # one trip to the thread
        ciphers = await self._rows_ciphers(rows)
        return [to_lead(row, ciphers) for row in rows]

    async def _settled(self) -> None:
        """Reads of leads call this first (intake.IntakeJournal: they wait for the move of
        what this process journaled)."""
