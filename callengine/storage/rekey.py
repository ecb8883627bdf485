"""The move to per-subject keys for stores made before them (after the schema migration that
adds `leads.subject_id`): every lead re-encrypted under its data subject's key, the subjects
(number hash, wrapped key) put in the keystore, and `leads.phone_hash` dropped, so that the
store keeps no keyed hash of any number. Run by Store.open; a no-op once done. An interrupted
run carries on at the next open (rows already moved have their subject_id).

The old rows' page images (the keyed hashes, the fields under the data key) stay in the
database file and its WAL until a checkpoint folds and truncates the log, which a running
engine may not reach for days: so before the first row is rewritten the scrub-pending marker
is written (scrub.py), and Store.open's scrub, right after, truncates the logs, checked, or
says loudly that it could not and is retried."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from uuid import uuid4

import aiosqlite

from callengine.crypto import FieldCipher
from callengine.storage import scrub
from callengine.storage.intake import journal_path
from callengine.storage.keystore import KeyStore
from callengine.storage.sql import file_uri
from callengine.storage.transactions import transaction

log = logging.getLogger(__name__)

BATCH = 1000
_FIELDS = (("phone_enc", "leads.phone"), ("name_enc", "leads.name"), ("email_enc", "leads.email"))


async def _columns(db: aiosqlite.Connection, table: str, schema: str = "main") -> list[str]:
    async with db.execute(f"SELECT name FROM {schema}.pragma_table_info('{table}')") as cursor:
        return [row[0] for row in await cursor.fetchall()]


async def rekey(db: aiosqlite.Connection, database: Path, cipher: FieldCipher, keys: KeyStore,
                write_lock: asyncio.Lock) -> int:
    """Returns how many leads were re-encrypted (0: nothing to do)."""
    if "phone_hash" not in await _columns(db, "leads"):
        return 0
    await _take_old_journal(db, database, write_lock)
    done = 0
    while True:
        async with db.execute(
            "SELECT id, phone_hash, phone_enc, name_enc, email_enc FROM leads"
            f" WHERE subject_id IS NULL LIMIT {BATCH}"
        ) as cursor:
            rows = await cursor.fetchall()
        if not rows:
            break
        if not done:  # the old rows' bytes go with the scrub that follows (Store.open)
            scrub.write_marker(database)
        subjects, new = {}, []
        for number_hash in {row[1] for row in rows}:
            found = await keys.subject_by_hash(number_hash)
            if found is None:
                subject_id = str(uuid4())
                subject, wrapped = cipher.new_subject_key(subject_id)
                new.append((subject_id, number_hash, wrapped, time.time()))
            else:
                subject_id, subject = found[0], cipher.subject_cipher(*found)
            subjects[number_hash] = (subject_id, subject)
        await keys.put_subjects(new)  # the keys first: a row never names a key not kept
        updates = []
        for lead_id, number_hash, *blobs in rows:
            subject_id, subject = subjects[number_hash]
            fields = [subject.encrypt(cipher.decrypt(blob, f"{context}:{lead_id}"),
                                      f"{context}:{lead_id}")
                      for blob, (_, context) in zip(blobs, _FIELDS)]
            updates.append((subject_id, *fields, lead_id))
        async with write_lock, transaction(db):
            await db.executemany(
                "UPDATE leads SET subject_id = ?, phone_enc = ?, name_enc = ?, email_enc = ?"
                " WHERE id = ?", updates)
        done += len(rows)
    async with write_lock, transaction(db):
        await db.execute("DROP INDEX IF EXISTS leads_day_phone")
        await db.execute("ALTER TABLE leads DROP COLUMN phone_hash")
    if done:
        log.info("storage: %d lead(s) re-encrypted under their data subjects' keys", done)
    return done


async def _take_old_journal(db: aiosqlite.Connection, database: Path,
                            write_lock: asyncio.Lock) -> None:
    """Leads an older intake journal holds (with phone_hash) into the store, as its mover
    would, and that journal's table dropped (the next open makes it anew)."""
    journal = journal_path(database)
    if not journal.exists():
        return
    await db.execute("ATTACH DATABASE ? AS old_journal", (file_uri(journal),))
    try:
        columns = await _columns(db, "new_leads", "old_journal")
        if "phone_hash" in columns:
            names = ", ".join(columns)
            async with write_lock, transaction(db):
                await db.execute(
                    f"INSERT OR IGNORE INTO leads ({names}, status, next_attempt_at,"
                    f" updated_at) SELECT {names}, 'queued', created_at, created_at"
                    " FROM old_journal.new_leads")
                await db.execute("DROP TABLE old_journal.new_leads")
    finally:
        await db.execute("DETACH DATABASE old_journal")
