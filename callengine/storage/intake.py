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
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiosqlite
from uuid import uuid4

from uuid6 import uuid7

from callengine.crypto.fields import SubjectCipher
from callengine.errors import NotFound
from callengine.hooks.events import LEAD_CREATED
from callengine.model import LEAD_QUEUED, Consent, Lead, Widget
from callengine.storage.base import StoreBase
from callengine.storage import limits, outbox
from callengine.storage.limits import Pending
from callengine.storage.rows import new_lead
from callengine.storage.sql import file_uri, marks

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = "-intake"
# Consent evidence (docs/consent.md), added to the journal by ALTER like scheduled_for.
EVIDENCE_COLUMNS = ("clause_sha256", "clause_language", "notice_version", "consent_at", "origin")
JOURNAL_COLUMNS = ("id", "widget_id", "subject_id", "phone_enc", "phone_region", "phone_kind",
                   "name_enc", "email_enc", "consent_marketing", "consent_recording",
                   "clause_version", "created_at", "scheduled_for", *EVIDENCE_COLUMNS)
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
GROUP_MAX = 1000  # new leads committed to the journal per transaction, at most

# A journaled lead into the store (by the mover, and into a backup's snapshot): queued, due at
# once or at its scheduled_for (move_values; OR IGNORE: moved already). Never a lead with a
# tombstone: a journal row left by a crash between a move and the journal's delete (or read
# by a move under way) must not bring back a lead purged or erased since it moved.
MOVE_LEAD = (
    f"INSERT OR IGNORE INTO leads ({', '.join(JOURNAL_COLUMNS)}, status, next_attempt_at,"
    f" updated_at) SELECT {', '.join('?' * len(JOURNAL_COLUMNS))}, '{LEAD_QUEUED}', ?, ?"
    f" WHERE NOT EXISTS (SELECT 1 FROM lead_tombstones WHERE id = ?)"
)


def move_values(row) -> tuple:
    """MOVE_LEAD's parameters for a journal row (JOURNAL_COLUMNS first)."""
    created = row[JOURNAL_COLUMNS.index("created_at")]
    scheduled = row[JOURNAL_COLUMNS.index("scheduled_for")]
    return (*tuple(row)[:len(JOURNAL_COLUMNS)], scheduled or created, created, row[0])


class _Changed(tuple):
    """A journal row with some columns changed, read by index and by name as sqlite3.Row."""

    def __new__(cls, row: sqlite3.Row, changes: dict[str, Any]) -> "_Changed":
        names = row.keys()
        self = super().__new__(cls, [changes.get(name, row[name]) for name in names])
        self._index = {name: i for i, name in enumerate(names)}
        return self

    def __getitem__(self, key):  # type: ignore[override]
        return super().__getitem__(self._index[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._index)


def _move_rows(conn: sqlite3.Connection, rows: list) -> None:
    """In the store's transaction: each journal row into leads, and the webhooks' lead.created
    of each lead that went in (outbox.py: with the move, or not at all)."""
    for row in rows:
        if conn.execute(MOVE_LEAD, move_values(row)).rowcount:
            outbox.write(conn, LEAD_CREATED, f"{LEAD_CREATED}:{row['id']}", row["id"], {
                "lead_id": row["id"], "widget_id": row["widget_id"],
                "created_at": row["created_at"], "scheduled_for": row["scheduled_for"],
                "phone_region": row["phone_region"],
                "consent": {"marketing": bool(row["consent_marketing"]),
                            "recording": bool(row["consent_recording"])},
                "origin": row["origin"]}, row["created_at"])


def _forget_moved(conn: sqlite3.Connection, moved: list[str]) -> None:
    """The journal's rows of leads moved, deleted in one trip to the journal's thread. Without
    its own fsync: the next lead's commit syncs the journal's log up to here. Lost to a power
    cut, the rows are moved again, and skipped."""
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        conn.execute(f"DELETE FROM new_leads WHERE id IN ({marks(len(moved))})", moved)
    finally:
        conn.execute("PRAGMA synchronous=FULL")


def _count_limits(conn: sqlite3.Connection) -> None:
    """The limits' counters (limits.py), made once with the last day's leads counted in (in
    one transaction: a second process opening meanwhile finds them made)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'intake_counts'").fetchone():
            return
        for statement in limits.SCHEMA:
            conn.execute(statement)
        limits.seed(conn, time.time())
    finally:
        conn.execute("COMMIT")


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
        await db._execute(_count_limits, db._conn)
        async with db.execute("SELECT name FROM pragma_table_info('new_leads')") as cursor:
            have = {row[0] for row in await cursor.fetchall()}
        added = (*NEW_SUBJECT_COLUMNS, "scheduled_for", *EVIDENCE_COLUMNS)
        for column, kind in zip(added, ("TEXT", "BLOB", "REAL", "TEXT", "TEXT", "TEXT", "REAL",
                                        "TEXT")):
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
        client: str | None = None,
    ) -> Lead:
        """Persist a new lead, queued for dialling now, after the rate limits pass.

        client: the client's IP address (the HTTP peer), kept only as a keyed hash
        (FieldCipher.client_hash, IPv6 by its /64) for the per-client limits.

        The lead is committed to the intake journal (JOURNAL_SUFFIX) together with the leads
        that arrived while the previous commit was in flight (group commit: one transaction,
        one fsync), each checked against the limits (storage/limits.py) in that transaction;
        this returns once that commit is durable. A lead with
        `scheduled_for` is due then; with `slot_capacity` too, it takes a place in that slot
        (SlotFull if none is left), checked in the same transaction. The same number to the
        same widget within
        its duplicate window returns the earlier lead (`duplicate` set), no new row. The lead
        is moved into the store right after; reads of leads wait for that move."""
        # UUIDv7: time-ordered, so the ids of leads (and attempts) made together sit together in
        # their indexes and the purge of old ones rewrites few pages (random v4 ids: 2x slower).
        lead_id = str(uuid7())
        number_hash = self._cipher.number_hash(phone_e164)
        assert self._journal is not None
        subject_id, cipher, wrapped = await self._subject_in_turn(number_hash)
        # The journal's row, by column (a new column: JOURNAL_COLUMNS and one entry here).
        row = {
            "id": lead_id, "widget_id": widget.id, "subject_id": subject_id,
            "phone_enc": cipher.encrypt(phone_e164, f"leads.phone:{lead_id}"),
            "phone_region": phone_region, "phone_kind": phone_kind,
            "name_enc": cipher.encrypt(name, f"leads.name:{lead_id}"),
            "email_enc": cipher.encrypt(email, f"leads.email:{lead_id}"),
            "consent_marketing": int(consent.marketing),
            "consent_recording": int(consent.recording),
            "clause_version": consent.clause_version, "created_at": now,
            "scheduled_for": scheduled_for,
            "clause_sha256": consent.clause_sha256, "clause_language": consent.clause_language,
            "notice_version": consent.notice_version, "consent_at": consent.at,
            "origin": consent.origin,
            "new_subject_hash": None if wrapped is None else number_hash,
            "new_subject_key": wrapped,
        }
        item = Pending(row, widget.settings, self._cipher.client_hash(client), now,
                       slot_capacity=slot_capacity)
        await self._group_commit(item)
        if isinstance(item.outcome, BaseException):
            raise item.outcome
        if isinstance(item.outcome, tuple):  # ("duplicate", the earlier lead's id)
            try:
                return replace(await self.get_lead(item.outcome[1]), duplicate=True)
            except NotFound:  # erased or purged since: a new lead after all
                async with self._journal_lock:
                    await self._journal.execute("DELETE FROM intake_recent WHERE lead_id = ?",
                                                (item.outcome[1],))
                return await self.create_lead(
                    widget, phone_e164=phone_e164, phone_region=phone_region,
                    phone_kind=phone_kind, name=name, email=email, consent=consent, now=now,
                    scheduled_for=scheduled_for, slot_capacity=slot_capacity, client=client)
        self._journaled.add(lead_id)
        if self._mover is None or self._mover.done():
            self._mover = asyncio.create_task(self._keep_moving(), name="intake-mover")
        return new_lead(lead_id, widget.id, phone_e164, phone_region, phone_kind, name, email,
                        consent, now, scheduled_for)

    async def _subject_in_turn(self, number_hash: str
                               ) -> tuple[str, SubjectCipher, bytes | None]:
        """_subject_for_intake, one look-up of a number at a time (two leads of a new number
        don't make two subjects; until its first lead moves, each of its leads carries the new
        key), while other numbers' look-ups run meanwhile: a lock for all of them made the
        leads reach the group commit one by one."""
        while (earlier := self._subject_lookups.get(number_hash)) is not None:
            await earlier
        turn = asyncio.get_running_loop().create_future()
        self._subject_lookups[number_hash] = turn
        try:
            return await self._subject_for_intake(number_hash)
        finally:
            del self._subject_lookups[number_hash]
            turn.set_result(None)

    async def _group_commit(self, item: Pending) -> None:
        """Queue the lead for the next group commit and wait until it is done (item.outcome)."""
        item_done = asyncio.get_running_loop().create_future()
        self._pending.append((item, item_done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending(), name="intake-commit")
        await asyncio.shield(item_done)

    async def _commit_pending(self) -> None:
        """The committer task: while leads wait, all of them in one transaction (the next
        batch gathers while this one's commit is in flight)."""
        assert self._journal is not None
        journal = self._journal
        columns = (*JOURNAL_COLUMNS, *NEW_SUBJECT_COLUMNS)
        while self._pending:
            batch, self._pending = self._pending[:GROUP_MAX], self._pending[GROUP_MAX:]
            now = max(item.now for item, _ in batch)  # the service's clock, not this one's
            prune_at = None
            if now - self._pruned_at >= limits.PRUNE_EVERY_S:
                prune_at, self._pruned_at = now, now
            try:
                async with self._journal_lock:
                    # One trip to the journal's thread for the whole batch (aiosqlite runs the
                    # function there, on its connection).
                    await journal._execute(limits.commit_batch, journal._conn,
                                           [item for item, _ in batch], columns, prune_at)
            except Exception as exc:  # the commit itself failed: none of them is in
                log.error("intake journal: a group commit of %d lead(s) failed: %s",
                          len(batch), exc)
                for item, _ in batch:
                    item.outcome = exc
            for item, item_done in batch:
                if not item_done.done():
                    item_done.set_result(None)

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
                moved = [row["id"] for row in rows]
                rows = await self._of_existing_widgets(rows)
                assert self._keys is not None  # new subjects' keys first, in one commit
                await self._keys.put_subjects([
                    (row["subject_id"], row["new_subject_hash"], row["new_subject_key"],
                     row["created_at"]) for row in rows if row["new_subject_key"] is not None])
                rows = await self._kept_subjects(rows)
                await self._transaction_in_thread(_move_rows, rows)  # one trip to its thread
                await self._erased_meanwhile(rows)
                async with self._journal_lock:
                    await self._journal._execute(_forget_moved, self._journal._conn, moved)
                self._journaled.difference_update(moved)
                for row in rows:
                    if row["new_subject_hash"] is not None:
                        if self._new_subjects.pop(row["new_subject_hash"], None):
                            self._remember_subject(row["new_subject_hash"], row["subject_id"])

    async def _kept_subjects(self, rows: list) -> list:
        """The journal rows, each with the subject the keystore kept for its number. Two
        processes that took in the same new number at once each made it a subject of its own;
        put_subjects keeps the first. The other's leads are re-encrypted under the kept one's
        key here (their own key is in the row): left as they were, they would read as erased
        (_erased_meanwhile) and be dropped."""
        assert self._keys is not None
        hashes = {row["new_subject_hash"] for row in rows if row["new_subject_key"] is not None}
        kept = {number_hash: await self._keys.subject_by_hash(number_hash)
                for number_hash in hashes}
        fixed = []
        for row in rows:
            found = kept.get(row["new_subject_hash"]) if row["new_subject_key"] else None
            if found is None or found[0] == row["subject_id"]:
                fixed.append(row)  # its own subject kept (or erased since: _erased_meanwhile)
                continue
            own = self._cipher.subject_cipher(row["subject_id"], bytes(row["new_subject_key"]))
            theirs = self._cipher.subject_cipher(*found)
            changes: dict[str, Any] = {"subject_id": found[0], "new_subject_key": None}
            for field in ("phone", "name", "email"):
                context = f"leads.{field}:{row['id']}"
                changes[f"{field}_enc"] = theirs.encrypt(own.decrypt(row[f"{field}_enc"],
                                                                     context), context)
            log.info("lead %s: its number's data subject was made by another process at the"
                     " same moment; the lead now uses that one", row["id"])
            fixed.append(_Changed(row, changes))
        return fixed

    async def _of_existing_widgets(self, rows: list) -> list:
        """The journal rows whose widget is still there. A lead journaled for a widget removed
        meanwhile (a visitor's request racing the removal, ConfigurationQueries.remove_widget)
        can't enter the store: it is dropped, logged, and forgotten with the batch, so that
        it doesn't hold up every lead after it. (A widget removed between this and the move
        fails that batch's move; the next one drops the lead.)"""
        named = sorted({row["widget_id"] for row in rows})
        found = await self._db.execute_fetchall(
            f"SELECT id FROM widgets WHERE id IN ({marks(len(named))})", named)
        existing = {row[0] for row in found}
        if len(existing) == len(named):
            return rows
        for row in rows:
            if row["widget_id"] not in existing:
                log.error("lead %s: its widget %s was removed while the lead waited in the"
                          " intake journal; the lead is dropped", row["id"], row["widget_id"])
        return [row for row in rows if row["widget_id"] in existing]

    async def _subject_for_intake(self, number_hash: str
                                  ) -> tuple[str, SubjectCipher, bytes | None]:
        """The number's subject: (id, cipher, None), or a new one's (id, cipher, wrapped key),
        which its first lead carries into the journal."""
        if number_hash in self._new_subjects:
            return self._new_subjects[number_hash]
        self._fresh_caches()
        known = self._subject_ids.get(number_hash)
        if known is not None and known in self._subject_ciphers:
            return known, self._subject_ciphers[known], None
        assert self._key_reader is not None
        found = await self._key_reader.subject_by_hash(number_hash)
        if found is None:
            subject_id = str(uuid4())  # random: it says nothing, not even when
            cipher, wrapped = self._cipher.new_subject_key(subject_id)
            self._new_subjects[number_hash] = (subject_id, cipher, wrapped)
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
        """Reads of leads call this first: they see every lead this process journaled before
        the read began. Only those: a read that waited for the journal to be empty waited, under
        a steady intake, for as long as new leads kept coming."""
        wanted = set(self._journaled)
        while wanted & self._journaled:
            await self._move_new_leads(batches=1)  # the oldest first

