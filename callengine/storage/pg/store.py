"""PgStore: the PostgreSQL backend of interface.Storage. The query mixins of storage/queries/
run on it unchanged (PgDatabase takes their SQLite-dialect SQL); what SQLite does through its
own files is done here the PostgreSQL way:

- **New leads** go straight into `leads`, in one transaction with their rate limits, duplicate
  window and slot (no intake journal: PostgreSQL's commit serves every engine at once).
- **Writes one at a time** (database.py: one advisory lock), as SQLite runs them, so each
  mixin's read-check-write holds across engines — except:
- **Claiming leads** (`start_attempts`), which takes row locks only: `FOR UPDATE SKIP LOCKED`
  over the leads asked for that are still queued, so two engines' rounds never wait on each
  other's rows or on other writes, and a lead gets one attempt however many engines ask.
- **The keystore** stays a local SQLite file (KeyStore), outside the database and its WAL,
  replicas and backups: an erasure deletes the subject's key there, and every copy of its
  rows in PostgreSQL is unreadable from then on (docs/scale-out.md, "Privacy").
- **The purge's batches** run on the same pool (no second file to open).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from uuid import uuid4

import asyncpg
from uuid6 import uuid7

from callengine.crypto import FieldCipher
from callengine.crypto.fields import SubjectCipher
from callengine.errors import Conflict, LeaseLost, NotFound, RateLimited, SlotFull, WidgetInUse
from callengine.hooks.events import LEAD_CREATED
from callengine.model import (
    LEAD_CALLING, LEAD_DONE, LEAD_QUEUED, Agent, Attempt, Consent, Group, Lead, Widget,
)
from callengine.ringorder import RingState
from callengine.storage import outbox
from callengine.storage.audit_head import AuditSeal
from callengine.storage.interface import engine_lease
from callengine.storage.keystore import KeyStore
from callengine.storage.limits import (
    BUCKET_S, CLIENT_WINDOWS, NO_CAP, NUMBER_WINDOWS, WIDGET_WINDOW_S, _retry_after,
)
from callengine.storage.pg import schema
from callengine.storage.pg.database import PgDatabase
from callengine.storage.purge import EXPIRED_LEADS, EXPIRED_RECORDINGS
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
from callengine.storage.queries.leads import dialling_plans_of
from callengine.storage.rows import new_lead, to_agent, to_group, to_widget
from callengine.storage.sql import chunks, marks

log = logging.getLogger(__name__)

POOL_SIZE = 10


class PgStore(ConfigurationQueries, LeadQueries, RecordingQueries, AccessQueries,
              RetentionQueries, ReportQueries, SubjectQueries, ClauseQueries, UserQueries,
              WebhookQueries, QueueCallbackQueries):
    """The PostgreSQL backend of interface.Storage (see there for what each write
    guarantees)."""

    _db: PgDatabase  # (StoreBase types it as aiosqlite's: the same calls)

    def challenge_key(self) -> bytes:
        return self._cipher.challenge_key()

    def client_hash(self, address: str | None) -> str | None:
        return self._cipher.client_hash(address)

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, data_key: bytes, *, keystore: Path | str,
                   write_lock: asyncio.Lock | None = None, audit_dir: Path,
                   password: str | None = None, scrub_dir: Path | None = None
                   ) -> AsyncIterator[PgStore]:
        """url: postgresql://… without a password (password: from the configuration's file
        or environment; None: libpq's own, PGPASSWORD or ~/.pgpass);
        keystore: the local keystore file (required: there is no default beside a server
        database); audit_dir: where the audit key and anchor are; scrub_dir: where an
        unfinished erasure's marker is kept (default: the keystore's directory)."""
        pool = await asyncpg.create_pool(url, password=password, min_size=1,
                                         max_size=POOL_SIZE)
        try:
            async with pool.acquire() as conn:
                await schema.migrate(conn)
            store = cls(PgDatabase(pool), FieldCipher(data_key), write_lock)  # type: ignore[arg-type]
            store._audit_seal = AuditSeal(audit_dir)
            # scrub.py keeps its marker beside "the database": here a name in scrub_dir
            store._path = (scrub_dir or Path(keystore).parent) / "postgresql-store"
            async with KeyStore.open(keystore) as store._keys, \
                    KeyStore.open(keystore) as store._key_reader:
                await store._retry_scrub()
                yield store
        finally:
            await pool.close()

    async def migrate(self) -> int:
        async with self._db.pool.acquire() as conn:
            return await schema.migrate(conn)

    async def schema_version(self) -> int:
        async with self._db.pool.acquire() as conn:
            return await schema.schema_version(conn)

    # ---- the transaction, and what SQLite's store does in its thread ------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[PgDatabase]:  # type: ignore[override]
        async with self.write_lock, self._db.transaction() as db:
            yield db

    async def _settled(self) -> None:
        """No journal: a lead is in `leads` once create_lead returns."""

    async def dialling_plans(self, widget_ids) -> dict[str, tuple[Widget, Group]]:
        wanted = sorted(set(widget_ids))
        widgets: dict[str, Widget] = {}
        for some in chunks(wanted):
            widgets.update((row["id"], to_widget(row)) for row in await self._db.execute_fetchall(
                f"SELECT * FROM widgets WHERE id IN ({marks(len(some))})", some))
        names = sorted({w.settings.group for w in widgets.values()})
        groups: dict[str, Group] = {}
        if names:
            members: dict[str, list[Agent]] = {}
            for row in await self._db.execute_fetchall(
                    "SELECT m.group_name, a.* FROM group_members m JOIN agents a"
                    f" ON a.name = m.agent_name WHERE m.group_name IN ({marks(len(names))})"
                    " ORDER BY m.group_name, m.position", names):
                members.setdefault(row["group_name"], []).append(to_agent(row))
            for row in await self._db.execute_fetchall(
                    f"SELECT * FROM agent_groups WHERE name IN ({marks(len(names))})", names):
                groups[row["name"]] = to_group(row, tuple(members.get(row["name"], ())))
        return dialling_plans_of(wanted, widgets, groups)

    async def ring_state(self, groups: list[str], endpoints: list[str]) -> RingState:
        rotations = {}
        if groups:
            rotations = {row[0]: row[1] for row in await self._db.execute_fetchall(
                "SELECT group_name, started_with FROM group_rotation"
                f" WHERE group_name IN ({marks(len(set(groups)))})", sorted(set(groups)))}
        last_called = {}
        if endpoints:
            for row in await self._db.execute_fetchall(
                    "SELECT agent, MAX(ended_at) FROM attempts WHERE agent = ANY(?)"
                    " GROUP BY agent", (sorted(set(endpoints)),)):
                if row[1] is not None:
                    last_called[row[0]] = row[1]
        return RingState(rotations, last_called)

    async def start_attempts(self, lead_ids: list[str], now: float,
                             progress: str | None = None,
                             rotations: dict[str, tuple[str, str]] | None = None,
                             engine: str | None = None, lease_owner: str | None = None
                             ) -> dict[str, Attempt]:
        """As the SQLite store's; the leads claimed with FOR UPDATE SKIP LOCKED (a lead another
        engine is claiming at this moment is left to it: not waited for, not dialled here)."""
        if not lead_ids:
            return {}
        rotations = rotations or {}
        started: dict[str, Attempt] = {}
        # Not behind the write lock: row locks only. The leads by FOR UPDATE SKIP LOCKED; the
        # lease row FOR SHARE, so a takeover (acquire_lease updates that row) waits for this
        # commit and then finds these attempts among the ones it closes.
        async with self.write_lock, self._db.transaction(serialized=False) as db:
            if lease_owner is not None:  # fenced: the check and the attempts commit together
                holder = await db.execute_fetchall(
                    "SELECT owner FROM job_leases WHERE name = ? FOR SHARE",
                    (engine_lease(engine or ""),))
                if not holder or holder[0][0] != lease_owner:
                    raise LeaseLost(f"engine {engine} no longer holds its lease")
            claimed = await db.execute_fetchall(
                "UPDATE leads SET status = ?, attempts = attempts + 1, progress = ?,"
                " next_attempt_at = NULL, updated_at = ? WHERE id IN (SELECT id FROM leads"
                " WHERE id = ANY(?) AND status = ? FOR UPDATE SKIP LOCKED)"
                " RETURNING id, attempts",
                (LEAD_CALLING, progress, now, list(lead_ids), LEAD_QUEUED))
            numbers = {row[0]: row[1] for row in claimed}
            for lead_id in lead_ids:  # in the order asked
                if lead_id not in numbers:
                    continue
                attempt = Attempt(str(uuid7()), lead_id, numbers[lead_id], "active", now)
                await db.execute(
                    "INSERT INTO attempts (id, lead_id, number, status, started_at, engine)"
                    " VALUES (?, ?, ?, 'active', ?, ?)",
                    (attempt.id, lead_id, attempt.number, now, engine))
                if lead_id in rotations:
                    await db.execute(
                        "INSERT INTO group_rotation (group_name, started_with, updated_at)"
                        " VALUES (?, ?, ?) ON CONFLICT (group_name) DO UPDATE SET"
                        " started_with = excluded.started_with, updated_at = excluded.updated_at",
                        (*rotations[lead_id], now))
                started[lead_id] = attempt
        return started

    # ---- widgets: no journal to count in ---------------------------------------------------

    async def get_widget_by_key(self, public_key: str) -> Widget:
        return await self._cached(("widget", public_key), lambda: self._widget_where(
            self._db, "public_key = ?", public_key, "with that public key"))

    async def _journaled_for(self, widget_id: str) -> int:
        return 0

    async def widget_references(self, widget_id: str) -> tuple[int, int]:
        return await self._store_references(self._db, widget_id)

    async def remove_widget(self, widget_id: str) -> None:
        async with self._transaction() as db:
            leads, tombstones = await self._store_references(db, widget_id)
            if leads or tombstones:
                raise WidgetInUse(widget_id, leads, tombstones)
            await db.execute("DELETE FROM clauses WHERE widget_id = ?", (widget_id,))
            cursor = await db.execute("DELETE FROM widgets WHERE id = ?", (widget_id,))
            if cursor.rowcount != 1:
                raise NotFound("widget", widget_id)
        self._config_changed()

    # ---- new leads --------------------------------------------------------------------------

    async def create_lead(self, widget: Widget, *, phone_e164: str, phone_region: str,
                          phone_kind: str, name: str | None, email: str | None,
                          consent: Consent, now: float, scheduled_for: float | None = None,
                          slot_capacity: int | None = None, client: str | None = None) -> Lead:
        """As the SQLite store's: the limits (exact windows over `leads` itself, the
        strictest maximum of the widgets whose leads of the number count), the duplicate
        window and the slot checked in the lead's own transaction (writes run one at a time:
        concurrent requests can't both slip under a limit)."""
        lead_id = str(uuid7())
        number_hash = self._cipher.number_hash(phone_e164)
        subject_id, cipher = await self._subject(number_hash, now)
        client_hash = self._cipher.client_hash(client)
        s = widget.settings
        async with self._transaction() as db:
            repeated = None
            if s.duplicate_window_s:  # the same number to the same widget within it
                earlier = await db.execute_fetchall(
                    "SELECT id FROM leads WHERE widget_id = ? AND subject_id = ?"
                    " AND created_at > ? ORDER BY created_at DESC LIMIT 1",
                    (widget.id, subject_id, now - s.duplicate_window_s))
                repeated = earlier[0][0] if earlier else None
            if repeated is None:
                await _check_limits(db, widget, subject_id, client_hash, now, scheduled_for,
                                    slot_capacity)
                await db.execute(
                    "INSERT INTO leads (id, widget_id, subject_id, phone_enc, phone_region,"
                    " phone_kind, name_enc, email_enc, consent_marketing, consent_recording,"
                    " clause_version, clause_sha256, clause_language, notice_version,"
                    " consent_at, origin, status, next_attempt_at, created_at, updated_at,"
                    " scheduled_for) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                    " ?, ?, ?, ?)",
                    (lead_id, widget.id, subject_id,
                     cipher.encrypt(phone_e164, f"leads.phone:{lead_id}"), phone_region,
                     phone_kind, cipher.encrypt(name, f"leads.name:{lead_id}"),
                     cipher.encrypt(email, f"leads.email:{lead_id}"), int(consent.marketing),
                     int(consent.recording), consent.clause_version, consent.clause_sha256,
                     consent.clause_language, consent.notice_version, consent.at,
                     consent.origin, LEAD_QUEUED, scheduled_for or now, now, now,
                     scheduled_for))
                if client_hash is not None:
                    await db.execute(
                        "INSERT INTO intake_clients (client, subject_id, last_at) VALUES"
                        " (?, ?, ?) ON CONFLICT (client, subject_id) DO UPDATE SET"
                        " last_at = excluded.last_at", (client_hash, subject_id, now))
                    await db.execute("DELETE FROM intake_clients WHERE client = ? AND"
                                     " last_at <= ?", (client_hash, now - 86400))
                await outbox.emit(db, LEAD_CREATED, f"{LEAD_CREATED}:{lead_id}", lead_id, {
                    "lead_id": lead_id, "widget_id": widget.id, "created_at": now,
                    "scheduled_for": scheduled_for, "phone_region": phone_region,
                    "consent": {"marketing": bool(consent.marketing),
                                "recording": bool(consent.recording)},
                    "origin": consent.origin}, now)
        if repeated is not None:
            return replace(await self.get_lead(repeated), duplicate=True)
        return new_lead(lead_id, widget.id, phone_e164, phone_region, phone_kind, name, email,
                        consent, now, scheduled_for)

    async def _subject(self, number_hash: str, now: float) -> tuple[str, SubjectCipher]:
        """The number's data subject (its id and key): from the caches or the keystore, or a
        new one, put into the keystore before its first lead is written."""
        self._fresh_caches()
        known = self._subject_ids.get(number_hash)
        if known is not None and known in self._subject_ciphers:
            return known, self._subject_ciphers[known]
        assert self._keys is not None
        async with self._moving:  # one new subject per number, however many leads race
            found = await self._keys.subject_by_hash(number_hash)
            if found is None:
                subject_id = str(uuid4())
                cipher, wrapped = self._cipher.new_subject_key(subject_id)
                await self._keys.put_subjects([(subject_id, number_hash, wrapped, now)])
                # Another engine on this keystore may have put the number's subject a moment
                # before (put_subjects skips a number kept already): use the one kept.
                found = await self._keys.subject_by_hash(number_hash)
                if found is None:
                    raise Conflict("the number's data was erased while this lead came in")
            subject_id = found[0]
            cipher = self._cipher.subject_cipher(*found)
        self._remember_subject(number_hash, subject_id)
        return subject_id, self._cache(subject_id, cipher)

    # ---- subjects and erasure ----------------------------------------------------------------

    async def forget_unused_subjects(self, subject_ids: set[str] | list[str]) -> int:
        unused = set(subject_ids)
        for chunk in chunks(sorted(unused)):
            unused -= {row[0] for row in await self._db.execute_fetchall(
                f"SELECT DISTINCT subject_id FROM leads WHERE subject_id IN"
                f" ({marks(len(chunk))})", chunk)}
        await self._forget_subjects(sorted(unused))
        return len(unused)

    async def forget_deleted_pages(self) -> None:
        """PostgreSQL keeps deleted rows in dead tuples, its WAL, replicas and backups until
        they are recycled: the personal fields in them are under subject keys, and erasure is
        the key's deletion in the keystore (outside PostgreSQL), whose log is folded and
        truncated here, checked. VACUUM then frees the dead tuples (not required for the
        promise: their bytes are unreadable without the key)."""
        assert self._keys is not None
        from callengine.errors import ErasureIncomplete
        from callengine.storage import scrub
        try:
            await self._keys.truncate_log()
        except ErasureIncomplete:
            assert self._path is not None
            scrub.write_marker(self._path)
            raise
        async with self._db.pool.acquire() as conn:
            await conn.execute("VACUUM leads, attempts, recordings, intake_clients")

    # ---- retention ---------------------------------------------------------------------------

    @asynccontextmanager
    async def purge_batches(self, thread_initializer: Callable[[], None] | None = None
                            ) -> AsyncIterator[PgPurgeBatches]:
        yield PgPurgeBatches(self)


class PgPurgeBatches:
    """The purge's batches on the store's own pool (interface.PurgeBatchStorage)."""

    def __init__(self, store: PgStore):
        self._store = store

    async def expired_recordings(self, widget_id: str, cutoff: float, limit: int) -> list[str]:
        return [row[0] for row in await self._store._db.execute_fetchall(
            f"SELECT r.id {EXPIRED_RECORDINGS} LIMIT ?", (cutoff, widget_id, limit))]

    async def mark_recordings_deleted(self, recording_ids: list[str], now: float) -> None:
        async with self._store._transaction() as db:
            for chunk in chunks(recording_ids):
                await db.execute("UPDATE recordings SET status = 'deleted', deleted_at = ?"
                                 f" WHERE id IN ({marks(len(chunk))})", (now, *chunk))

    async def expired_leads(self, widget_id: str, cutoff: float, limit: int
                            ) -> tuple[list[str], list[str]]:
        lead_ids = [row[0] for row in await self._store._db.execute_fetchall(
            f"SELECT id {EXPIRED_LEADS} ORDER BY created_at LIMIT ?", (widget_id, cutoff, limit))]
        return lead_ids, await self._store.live_recording_ids(lead_ids)

    async def subjects_of(self, lead_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(lead_ids):
            found |= {row[0] for row in await self._store._db.execute_fetchall(
                f"SELECT DISTINCT subject_id FROM leads WHERE id IN ({marks(len(chunk))})",
                chunk)}
        return found

    async def purge_leads(self, lead_ids: list[str], now: float, reason: str) -> int:
        return await self._store.purge_leads(lead_ids, now, reason)

    def after_batch(self) -> None:
        pass


async def _check_limits(db: PgDatabase, widget: Widget, subject_id: str, client: str | None,
                        now: float, scheduled_for: float | None, slot_capacity: int | None
                        ) -> None:
    """RateLimited or SlotFull, decided as storage/limits.py decides them for SQLite: windows
    of whole minutes (a minute counts, whole, when its newest lead is inside the window),
    each minute's maximum the strictest of its leads' widgets'; a client's numbers exactly.
    Here the minutes are made from the leads themselves rather than kept as counters."""
    s = widget.settings
    rows = await db.execute_fetchall(
        "SELECT l.created_at, w.settings FROM leads l JOIN widgets w ON w.id = l.widget_id"
        " WHERE CAST(l.created_at / 86400 AS INTEGER) IN (?, ?, ?) AND l.subject_id = ?"
        " AND l.created_at > ?", (*_days(now - 86400 - BUCKET_S, now), subject_id,
                                  now - 86400 - BUCKET_S))
    minutes = _minutes((row[0], json.loads(row[1])) for row in rows)
    for window, setting, _ in NUMBER_WINDOWS:
        inside = [m for m in minutes if m[0] > now - window]
        count = sum(m[1] for m in inside)
        maximum = min([getattr(s, setting), *(m[2].get(setting, NO_CAP) for m in inside)])
        if count >= maximum:
            raise RateLimited(
                f"too many callback requests for this number ({maximum} per"
                f" {window // 60} minutes)",
                _retry_after([m[:2] for m in inside], window, count, maximum, now), "number")
    if client is not None:
        asked = await db.execute_fetchall(
            "SELECT subject_id, last_at FROM intake_clients WHERE client = ? AND last_at > ?",
            (client, now - CLIENT_WINDOWS[1][0]))
        if not any(row[0] == subject_id for row in asked):  # only a new number counts
            for window, setting, name in CLIENT_WINDOWS:
                inside = [(row[1], 1) for row in asked if row[1] > now - window]
                maximum = getattr(s, setting)
                if len(inside) >= maximum:
                    raise RateLimited(
                        f"too many numbers asked for from this address ({maximum} per {name})",
                        _retry_after(inside, window, len(inside), maximum, now), "client")
    recent = await db.execute_fetchall(
        "SELECT created_at FROM leads WHERE widget_id = ? AND created_at > ?",
        (widget.id, now - WIDGET_WINDOW_S - BUCKET_S))
    inside = [m[:2] for m in _minutes((row[0], {}) for row in recent)
              if m[0] > now - WIDGET_WINDOW_S]
    count = sum(n for _, n in inside)
    if count >= s.max_leads_per_hour:
        raise RateLimited("this widget has reached its hourly limit of callbacks",
                          _retry_after(inside, WIDGET_WINDOW_S, count, s.max_leads_per_hour,
                                       now), "widget")
    if slot_capacity is not None:
        (taken,), = await db.execute_fetchall(
            "SELECT COUNT(*) FROM leads WHERE widget_id = ? AND scheduled_for = ?"
            f" AND status != '{LEAD_DONE}'", (widget.id, scheduled_for))
        if taken >= slot_capacity:
            raise SlotFull()


def _days(start: float, end: float) -> tuple[int, int, int]:
    """The day numbers (leads_day_subject's) from start's to end's, three at most."""
    first, last = int(start / 86400), int(end / 86400)
    return first, min(first + 1, last), last


def _minutes(leads) -> list[tuple[float, int, dict[str, int]]]:
    """(created_at, the lead's widget's settings) → per minute: (its newest lead's time, its
    leads, the smallest of each maximum setting among its leads' widgets)."""
    buckets: dict[int, tuple[float, int, dict[str, int]]] = {}
    for at, settings in leads:
        last, n, caps = buckets.get(int(at / BUCKET_S), (at, 0, {}))
        for _, setting, _ in NUMBER_WINDOWS:
            if setting in settings:
                caps[setting] = min(caps.get(setting, NO_CAP), int(settings[setting]))
        buckets[int(at / BUCKET_S)] = (max(last, at), n + 1, caps)
    return list(buckets.values())
