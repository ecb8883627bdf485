"""The intake journal and its mover: new leads, their rate limits, and their way into the store.

New leads first land in the intake journal, a small database beside the store
(`<database>-intake`), and a mover task takes them into the store right after, off the
visitor's path. A retention purge holds the store's write lock most of the time and fills its
WAL, and a visitor's request waited for both (bench/bench_purge.py). The journal's commit
syncs only its own pages; its connection reads the store (attached, read-only) in the same
statement that adds the lead, so the rate limits count every lead, moved or not. Reads of
leads first wait for the move of what this process journaled (`IntakeJournal._settled`).

A lead's personal fields are encrypted under its data subject's key (crypto.fields). The first
lead of a new subject carries that subject's number hash and wrapped key in the journal row
(columns NEW_SUBJECT_COLUMNS, never copied into the store or a backup); the mover puts a
batch's new subjects into the keystore in one transaction before their leads enter the store.
So a new lead costs the journal's commit and no keystore commit of its own.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from uuid import uuid4

from uuid6 import uuid7

from callengine.crypto.fields import SubjectCipher
from callengine.errors import RateLimited, SlotFull
from callengine.model import LEAD_QUEUED, Consent, Lead, Widget
from callengine.storage.base import StoreBase
from callengine.storage.schema import LEAD_DAY, day
from callengine.storage.sql import file_uri, marks

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = "-intake"
JOURNAL_COLUMNS = ("id", "widget_id", "subject_id", "phone_enc", "phone_region", "phone_kind",
                   "name_enc", "email_enc", "consent_marketing", "consent_recording",
                   "clause_version", "created_at", "scheduled_for")
# The journal's table takes its columns from `leads` (with their types; NOT NULL and the
# other constraints are checked when a lead moves in), so a migration of `leads` is made once.
_JOURNAL_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS new_leads AS SELECT {', '.join(JOURNAL_COLUMNS)}"
    " FROM store.leads WHERE 0",
    "CREATE UNIQUE INDEX IF NOT EXISTS new_leads_id ON new_leads(id)",
)
NEW_SUBJECT_COLUMNS = ("new_subject_hash", "new_subject_key")  # the journal's own
MOVE_BATCH = 500  # journaled leads moved into the store per transaction
# The mover waits this long before each batch, so that a batch carries the leads of a few
# milliseconds (and one keystore commit and one store commit serve them all) rather than
# one each; a lead is durable in the journal before that, and reads of leads move at once.
MOVE_GATHER_S = 0.01

# The rate limits' counts, run on the intake journal's connection: leads of subject ? in
# the last day (rows of today's and yesterday's days of leads_day_phone), leads of widget ? in
# the last hour; in the store and in the journal, where a lead moved but not yet forgotten is
# not counted twice.
_NOT_MOVED = "NOT EXISTS (SELECT 1 FROM store.leads l WHERE l.id = j.id)"
_LEADS_PER_NUMBER = (
    f"SELECT (SELECT COUNT(*) FROM store.leads WHERE {LEAD_DAY} IN (?, ?) AND subject_id = ?"
    " AND created_at > ?) + (SELECT COUNT(*) FROM new_leads j WHERE subject_id = ?"
    f" AND created_at > ? AND {_NOT_MOVED})"
)
_LEADS_PER_WIDGET = (
    "SELECT (SELECT COUNT(*) FROM store.leads WHERE widget_id = ? AND created_at > ?)"
    f" + (SELECT COUNT(*) FROM new_leads j WHERE widget_id = ? AND created_at > ? AND {_NOT_MOVED})"
)
# A journaled lead into the store (by the mover, and into a backup's snapshot): queued, due at
# once or at its scheduled_for (move_values; OR IGNORE: moved already).
MOVE_LEAD = (
    f"INSERT OR IGNORE INTO leads ({', '.join(JOURNAL_COLUMNS)}, status, next_attempt_at,"
    f" updated_at) VALUES ({', '.join('?' * len(JOURNAL_COLUMNS))}, '{LEAD_QUEUED}', ?, ?)"
)
# Leads of widget ? scheduled for slot ? (store: not closed; journal: not moved yet).
_LEADS_IN_SLOT = (
    "SELECT (SELECT COUNT(*) FROM store.leads WHERE widget_id = ? AND scheduled_for = ?"
    f" AND status != 'done') + (SELECT COUNT(*) FROM new_leads j WHERE widget_id = ?"
    f" AND scheduled_for = ? AND {_NOT_MOVED})"
)


def move_values(row) -> tuple:
    """MOVE_LEAD's parameters for a journal row (JOURNAL_COLUMNS first)."""
    created = row[JOURNAL_COLUMNS.index("created_at")]
    scheduled = row[JOURNAL_COLUMNS.index("scheduled_for")]
    return (*tuple(row)[:len(JOURNAL_COLUMNS)], scheduled or created, created)


def journal_path(database: Path) -> Path:
    return database.with_name(database.name + JOURNAL_SUFFIX)


@asynccontextmanager
async def open_journal(database: Path) -> AsyncIterator[aiosqlite.Connection]:
    """The intake journal beside `database`, with the store attached read-only as `store`."""
    db = await aiosqlite.connect(file_uri(journal_path(database)), uri=True,
                                 isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=5000",
                       "secure_delete=ON"):
            await db.execute(f"PRAGMA {pragma}")
        await db.execute("ATTACH DATABASE ? AS store", (file_uri(database) + "?mode=ro",))
        for statement in _JOURNAL_SCHEMA:
            await db.execute(statement)
        async with db.execute("SELECT name FROM pragma_table_info('new_leads')") as cursor:
            have = {row[0] for row in await cursor.fetchall()}
        for column, kind in zip((*NEW_SUBJECT_COLUMNS, "scheduled_for"), ("TEXT", "BLOB", "REAL")):
            if column not in have:
                await db.execute(f"ALTER TABLE new_leads ADD COLUMN {column} {kind}")
        yield db
    finally:
        await db.close()


class IntakeJournal(StoreBase):
    """Store's part that writes new leads (to the journal) and moves them into the store."""

    async def create_lead(
        self,
        widget: Widget,
        *,
        phone_e164: str,
        phone_region: str,
        phone_kind: str,
        name: str | None,
        email: str | None,
        consent: Consent,
        now: float,
        scheduled_for: float | None = None,
        slot_capacity: int | None = None,
    ) -> Lead:
        """Persist a new lead, queued for dialling now, after the widget's rate limits pass.

        The lead is committed to the intake journal (JOURNAL_SUFFIX) and moved into the store
        right after; reads of leads wait for that move. Check and insert are one INSERT
        statement, so concurrent requests can't both slip under a limit. A lead with
        `scheduled_for` is due then; with `slot_capacity` too, it takes a place in that slot
        (SlotFull if none is left), checked in the same statement."""
        # UUIDv7: time-ordered, so the ids of leads (and attempts) made together sit together in
        # their indexes and the purge of old ones rewrites few pages (random v4 ids: 2x slower).
        lead_id = str(uuid7())
        settings = widget.settings
        number_hash = self._cipher.number_hash(phone_e164)
        per_widget = (widget.id, now - 3600, widget.id, now - 3600)
        in_slot = (widget.id, scheduled_for, widget.id, scheduled_for)
        slot_check = f" AND ({_LEADS_IN_SLOT}) < ?" if slot_capacity is not None else ""
        columns = (*JOURNAL_COLUMNS, *NEW_SUBJECT_COLUMNS)
        assert self._journal is not None
        # The subject is found (or made) under the journal's lock, so that two leads of a new
        # number don't make two subjects.
        async with self._journal_lock:
            subject_id, cipher, wrapped = await self._subject_for_intake(number_hash)
            per_number = (day(now - 86400), day(now), subject_id, now - 86400,
                          subject_id, now - 86400)
            # One statement, so one trip to the journal's SQLite thread. An INSERT takes the
            # journal's write lock before it reads, so the limits are checked and the row
            # added atomically; what the mover takes into the store meanwhile is counted once.
            inserted = await self._journal.execute_fetchall(
                f"INSERT INTO new_leads ({', '.join(columns)})"
                f" SELECT {', '.join('?' * len(columns))}"
                f" WHERE ({_LEADS_PER_NUMBER}) < ? AND ({_LEADS_PER_WIDGET}) < ?{slot_check}"
                " RETURNING id",
                (
                    lead_id, widget.id, subject_id,
                    cipher.encrypt(phone_e164, f"leads.phone:{lead_id}"),
                    phone_region, phone_kind,
                    cipher.encrypt(name, f"leads.name:{lead_id}"),
                    cipher.encrypt(email, f"leads.email:{lead_id}"),
                    int(consent.marketing), int(consent.recording), consent.clause_version,
                    now, scheduled_for, None if wrapped is None else number_hash, wrapped,
                    *per_number, settings.max_leads_per_number_per_day,
                    *per_widget, settings.max_leads_per_hour,
                    *((*in_slot, slot_capacity) if slot_capacity is not None else ()),
                ),
            )
            if inserted and wrapped is not None:
                self._new_subjects[number_hash] = (subject_id, cipher)
        if not inserted:  # a limit was reached: say which
            async with self._journal.execute(_LEADS_PER_NUMBER, per_number) as cursor:
                (count,) = await cursor.fetchone()
            if count >= settings.max_leads_per_number_per_day:
                raise RateLimited("too many callback requests for this number today", 3600)
            if slot_capacity is not None:
                async with self._journal.execute(_LEADS_PER_WIDGET, per_widget) as cursor:
                    (count,) = await cursor.fetchone()
                if count < settings.max_leads_per_hour:
                    raise SlotFull()
            raise RateLimited("this widget has reached its hourly limit of callbacks", 600)
        self._journaled.add(lead_id)
        if self._mover is None or self._mover.done():
            self._mover = asyncio.create_task(self._keep_moving(), name="intake-mover")
        return Lead(
            id=lead_id, widget_id=widget.id, phone_e164=phone_e164, phone_region=phone_region,
            phone_kind=phone_kind, name=name, email=email, consent=consent,
            status=LEAD_QUEUED, progress=None, outcome=None, cause=None, attempts=0,
            next_attempt_at=scheduled_for or now, created_at=now, closed_at=None,
            scheduled_for=scheduled_for,
        )

    async def _keep_moving(self) -> None:
        """The mover task (create_lead starts it): until every journaled lead is in the store."""
        try:
            while self._journaled:
                await asyncio.sleep(MOVE_GATHER_S)
                await self._move_new_leads(batches=1)
        except Exception:
            log.exception("intake journal: %d new lead(s) not moved into the store yet; the"
                          " next new lead or read of leads tries again", len(self._journaled))

    async def _move_new_leads(self, batches: int | None = None) -> None:
        """Move every lead in the intake journal (or that many batches of them), whoever
        journaled it, into the store: each batch committed to the store first, then forgotten
        by the journal (a crash between the two leaves rows the next move skips)."""
        assert self._journal is not None
        async with self._moving:
            while batches is None or batches > 0:
                batches = None if batches is None else batches - 1
                before = set(self._journaled)
                rows = await self._journal.execute_fetchall(
                    f"SELECT {', '.join((*JOURNAL_COLUMNS, *NEW_SUBJECT_COLUMNS))}"
                    f" FROM new_leads ORDER BY created_at LIMIT {MOVE_BATCH}")
                if not rows:
                    self._journaled -= before  # moved by another process's Store
                    return
                assert self._keys is not None  # new subjects' keys first, in one commit
                await self._keys.put_subjects([
                    (row["subject_id"], row["new_subject_hash"], row["new_subject_key"],
                     row["created_at"]) for row in rows if row["new_subject_key"] is not None])
                async with self._transaction() as db:
                    await db.executemany(MOVE_LEAD, [move_values(row) for row in rows])
                await self._erased_meanwhile(rows)
                moved = [row["id"] for row in rows]
                async with self._journal_lock:
                    # Without its own fsync: the next lead's commit syncs the journal's log up
                    # to here. Lost to a power cut, the rows are moved again, and skipped.
                    await self._journal.execute("PRAGMA synchronous=NORMAL")
                    try:
                        await self._journal.execute(
                            f"DELETE FROM new_leads WHERE id IN ({marks(len(moved))})",
                            moved)
                    finally:
                        await self._journal.execute("PRAGMA synchronous=FULL")
                self._journaled.difference_update(moved)
                for row in rows:
                    if row["new_subject_hash"] is not None:
                        if self._new_subjects.pop(row["new_subject_hash"], None):
                            self._remember_subject(row["new_subject_hash"], row["subject_id"])

    async def _subject_for_intake(self, number_hash: str
                                  ) -> tuple[str, SubjectCipher, bytes | None]:
        """The number's subject: (id, cipher, None), or a new one's (id, cipher, wrapped key),
        which its first lead carries into the journal."""
        if number_hash in self._new_subjects:
            return (*self._new_subjects[number_hash], None)
        self._fresh_caches()
        known = self._subject_ids.get(number_hash)
        if known is not None and known in self._subject_ciphers:
            return known, self._subject_ciphers[known], None
        assert self._key_reader is not None
        found = await self._key_reader.subject_by_hash(number_hash)
        if found is None:
            subject_id = str(uuid4())  # random: it says nothing, not even when
            cipher, wrapped = self._cipher.new_subject_key(subject_id)
            return subject_id, self._cache(subject_id, cipher), wrapped
        subject_id = found[0]
        cipher = self._subject_ciphers.get(subject_id) or self._cache(
            subject_id, self._cipher.subject_cipher(*found))
        self._remember_subject(number_hash, subject_id)
        return subject_id, cipher, None

    async def _erased_meanwhile(self, rows) -> None:
        """After a batch's commit into the store: its leads whose subject has no key any more
        (erased by another process since the lead was journaled, or while this process's
        cache still named the subject) are erased too — tombstoned, logged, never left
        unreadable and uncounted. An erasure that deletes the key after this check finds
        these leads in the store itself (SubjectQueries.forget_number)."""
        assert self._keys is not None
        named = {row["subject_id"] for row in rows}
        gone = named - set(await self._keys.subject_keys(sorted(named)))
        if not gone:
            return
        self._forget_cached(gone)
        lost = [row["id"] for row in rows if row["subject_id"] in gone]
        await self.purge_leads(lost, time.time(), "erasure")
        for lead_id in lost:
            log.warning("lead %s: its data subject was erased while it waited in the intake"
                        " journal; erased with it (tombstone reason 'erasure')", lead_id)

    async def _settled(self) -> None:
        """Reads of leads call this first: they see every lead this process journaled."""
        if self._journaled:
            await self._move_new_leads()

