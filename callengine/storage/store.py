"""The SQLite Store: one aiosqlite connection to the database, the intake journal beside it,
the keystore that holds its data subjects' keys, and every query of the application, composed
from the mixins of storage/queries/ and intake.py.

Every write that must not be half done runs in one `BEGIN IMMEDIATE` transaction
(transactions.py), so a crash leaves either the old or the new row, never a mix.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from callengine.crypto import FieldCipher
from callengine.storage import schema
from callengine.storage.audit_head import AuditSeal
from callengine.storage.intake import IntakeJournal, open_journal
from callengine.storage.keystore import KeyStore
from callengine.storage.rekey import rekey
from callengine.storage.queries.access import AccessQueries
from callengine.storage.queries.clauses import ClauseQueries
from callengine.storage.queries.configuration import ConfigurationQueries
from callengine.storage.queries.leads import LeadQueries
from callengine.storage.queries.queue_callbacks import QueueCallbackQueries
from callengine.storage.queries.recordings import RecordingQueries
from callengine.storage.queries.reports import ReportQueries
from callengine.storage.queries.retention import RetentionQueries
from callengine.storage.queries.subjects import SubjectQueries
from callengine.storage.queries.users import UserQueries
from callengine.storage.queries.webhooks import WebhookQueries

log = logging.getLogger(__name__)

# A commit that finds the WAL longer than this folds it back into the database itself (SQLite's
# default is 1,000 pages). Larger than what a purge writes between its own checkpoints
# (purge.PURGE_CHECKPOINT_EVERY_S), so that no intake commit is made to do the purge's
# checkpoint.
WAL_AUTOCHECKPOINT_PAGES = 50_000  # about 200 MB


KEYSTORE_SUFFIX = "-keys"  # the keystore beside the database, when none is named


def default_keystore(database: Path) -> Path:
    return database.with_name(database.name + KEYSTORE_SUFFIX)


class Store(ConfigurationQueries, IntakeJournal, LeadQueries, RecordingQueries, AccessQueries,
            RetentionQueries, ReportQueries, SubjectQueries, ClauseQueries, UserQueries,
            WebhookQueries, QueueCallbackQueries):
    """The SQLite backend of interface.Storage (see there for what each write guarantees)."""

    def challenge_key(self) -> bytes:
        return self._cipher.challenge_key()

    def client_hash(self, address: str | None) -> str | None:
        """A client's identity for per-client limits: the keyed hash of its address (IPv6 by
        its /64), never the address (FieldCipher.client_hash)."""
        return self._cipher.client_hash(address)

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | str, data_key: bytes, *, keystore: Path | str | None = None,
                   write_lock: asyncio.Lock | None = None, audit_dir: Path | None = None
                   ) -> AsyncIterator[Store]:
        """keystore: the keystore file that holds the data subjects' keys (the configured
        `store.keystore`, the one the recordings' keys are in; by default a file beside the
        database, `<database>-keys`). Every process that opens the store must name the same.

        write_lock: pass another Store's `write_lock` when this process opens a second
        connection to the same database (the purge's), or the purge process's TurnLock, which
        asks the engine for turns on its lock. Writers then queue in turn on the lock
        instead of in SQLite's busy handler, which polls with growing sleeps and lets a writer
        that commits and begins again at once starve the others.
        audit_dir: where the audit key and the chain's anchor are (audit_head.py; default the
        `keystore` directory beside the database, as the configuration's default)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            # Deleted rows are overwritten, not left in free pages: erasure leaves no trace.
            await db.execute("PRAGMA secure_delete=ON")
            await db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            store = cls(db, FieldCipher(data_key), write_lock)
            store._path = path
            store._audit_seal = AuditSeal(audit_dir or path.parent / "keystore")
            keys_path = keystore or default_keystore(path)
            # Two connections: intake's look-ups of a number's subject read on their own, so
            # they never queue behind this process's keystore writes (the mover's new subjects),
            # which may wait for another process's (a purge deleting keys).
            async with KeyStore.open(keys_path) as store._keys, \
                    KeyStore.open(keys_path) as store._key_reader:
                await store.migrate()
                await rekey(db, path, store._cipher, store._keys, store.write_lock)
                async with open_journal(path) as store._journal:
                    try:
                        # what a stopped process journaled and did not move (any process's)
                        await store._move_new_leads()
                        await store._retry_scrub()
                        yield store
                    finally:
                        if store._mover is not None:
                            await store._mover  # it logs its own failure: the leads stay
        finally:
            await db.close()

    async def migrate(self) -> int:
        return await schema.migrate(self._db, self.write_lock)

    async def schema_version(self) -> int:
        return await schema.schema_version(self._db)
