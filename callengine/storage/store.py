"""All SQL lives here: the embedded SQLite store (aiosqlite) and its schema migrations.

Every write that must not be half done runs in one `BEGIN IMMEDIATE` transaction, so a crash
leaves either the old or the new row, never a mix. Times are Unix seconds (float).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite
from uuid6 import uuid7

from callengine.access import GENESIS, AuditEntry, Principal, Role, chain_hash
from callengine.crypto import FieldCipher
from callengine.errors import Conflict, NotFound, RateLimited
from callengine.flow import Result, Strategy
from callengine.model import (
    LEAD_CALLING,
    LEAD_DONE,
    LEAD_QUEUED,
    Agent,
    Attempt,
    Consent,
    Group,
    Lead,
    Recording,
    Widget,
    WidgetSettings,
    widget_settings_from_input,
)

log = logging.getLogger(__name__)


# Each entry moves the schema one version up; never edit one that has shipped, add a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE agents (
        name TEXT PRIMARY KEY,
        endpoint TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE agent_groups (
        name TEXT PRIMARY KEY,
        strategy TEXT NOT NULL CHECK (strategy IN ('ring-all', 'sequential')),
        ring_timeout INTEGER NOT NULL
    );
    CREATE TABLE group_members (
        group_name TEXT NOT NULL REFERENCES agent_groups(name) ON DELETE CASCADE,
        agent_name TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        PRIMARY KEY (group_name, agent_name)
    );
    CREATE TABLE widgets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL UNIQUE,
        settings TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE leads (
        id TEXT PRIMARY KEY,
        widget_id TEXT NOT NULL REFERENCES widgets(id),
        phone_hash TEXT NOT NULL,  -- HMAC of the E.164 number: lookups without the number
        phone_enc BLOB NOT NULL,  -- AES-256-GCM (crypto.FieldCipher), like name and e-mail
        phone_region TEXT NOT NULL,
        phone_kind TEXT NOT NULL,
        name_enc BLOB,
        email_enc BLOB,
        consent_marketing INTEGER NOT NULL,
        consent_recording INTEGER NOT NULL,
        clause_version TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'calling', 'done')),
        progress TEXT,
        outcome TEXT,
        cause TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        closed_at REAL
    );
    CREATE INDEX leads_due ON leads(status, next_attempt_at);
    CREATE INDEX leads_widget_created ON leads(widget_id, created_at);
    CREATE INDEX leads_phone_created ON leads(phone_hash, created_at);
    CREATE TABLE attempts (
        id TEXT PRIMARY KEY,
        lead_id TEXT NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'done')),
        started_at REAL NOT NULL,
        ended_at REAL,
        outcome TEXT,
        q850 INTEGER,
        cause TEXT,
        agent TEXT,
        agent_ring_s REAL,
        visitor_ring_s REAL,
        talk_s REAL,
        connected INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX attempts_lead ON attempts(lead_id);
    CREATE INDEX attempts_active ON attempts(status);
    """,
    # Recordings: metadata only; the audio is ciphertext in <recordings_dir>/<id>.cerec.
    """
    CREATE TABLE recordings (
        id TEXT PRIMARY KEY,
        lead_id TEXT NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
        attempt_id TEXT NOT NULL REFERENCES attempts(id) ON DELETE CASCADE,
        route TEXT NOT NULL,
        key_id TEXT NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('recording', 'complete', 'incomplete', 'failed', 'deleted')),
        started_at REAL NOT NULL,
        ended_at REAL,
        duration_s REAL,
        bytes INTEGER,
        segments INTEGER,
        sha256 TEXT,
        problem TEXT,
        deleted_at REAL
    );
    CREATE INDEX recordings_lead ON recordings(lead_id);
    CREATE INDEX recordings_status ON recordings(status)
    """,
    # Retention: a purged lead leaves a tombstone without personal data, so counts and reports
    # stay right; a lease keeps two purges (engine, CLI) from running at once.
    """
    CREATE TABLE lead_tombstones (
        id TEXT PRIMARY KEY,
        widget_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        closed_at REAL,
        outcome TEXT,
        attempts INTEGER NOT NULL,
        consent_marketing INTEGER NOT NULL,
        consent_recording INTEGER NOT NULL,
        clause_version TEXT NOT NULL,
        purged_at REAL NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX lead_tombstones_widget ON lead_tombstones(widget_id, created_at);
    CREATE INDEX recordings_attempt ON recordings(attempt_id);
    CREATE INDEX recordings_live_started ON recordings(started_at)
        WHERE status NOT IN ('deleted', 'recording');
    CREATE TABLE job_leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    )
    """,
    # Roles: API tokens (only their hashes) and the append-only, hash-chained audit log.
    """
    CREATE TABLE api_tokens (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent', 'viewer')),
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
    """,
    # Indexes shaped for the retention purge (bench/bench_purge.py), which deletes the oldest
    # leads with their attempts and recordings:
    # - the per-number index keyed by day first, so the purge empties neighbouring pages instead
    #   of touching a random page per lead (keyed by HMAC alone, every day's leads were spread
    #   over the whole tree); rate limits look up today's and yesterday's entries;
    # - the "what is in progress" indexes made partial: they hold only queued leads, active
    #   attempts and recordings being made, so purging finished rows never touches them.
    """
    DROP INDEX leads_phone_created;
    CREATE INDEX leads_day_phone ON leads(CAST(created_at / 86400 AS INTEGER), phone_hash);
    DROP INDEX leads_due;
    CREATE INDEX leads_queued ON leads(next_attempt_at) WHERE status = 'queued';
    DROP INDEX attempts_active;
    CREATE INDEX attempts_active ON attempts(started_at) WHERE status = 'active';
    DROP INDEX recordings_status;
    CREATE INDEX recordings_in_progress ON recordings(started_at) WHERE status = 'recording'
    """,
    # Each recording's sample rate (8000 or 16000 Hz): the ciphertext does not say, and bytes
    # become seconds or audio only through it. Every recording before this was 16 kHz.
    """
    ALTER TABLE recordings ADD COLUMN sample_rate INTEGER NOT NULL DEFAULT 16000
        CHECK (sample_rate > 0)
    """,
]

# A commit that finds the WAL longer than this folds it back into the database itself (SQLite's
# default is 1,000 pages). Larger than what a purge writes between its own checkpoints
# (PURGE_CHECKPOINT_EVERY_S), so that no intake commit is made to do the purge's checkpoint.
WAL_AUTOCHECKPOINT_PAGES = 50_000  # about 200 MB
# The purge folds the WAL back at most this often: pages that every batch rewrites (B-tree
# interior pages, the pages it is emptying) then reach the database once a second rather than
# once a batch. bench/bench_purge.py: 200k leads, checkpoints after each batch wrote 3.9 KB per
# lead to the disk, once a second 2.5 KB, and ran 40 % faster.
PURGE_CHECKPOINT_EVERY_S = 1.0

# The leading expression of leads_day_phone: a query must spell it exactly so to use the index.
LEAD_DAY = "CAST(created_at / 86400 AS INTEGER)"

# New leads first land in the intake journal, a small database beside the store
# (`<database>-intake`), and a mover task takes them into the store right after, off the
# visitor's path. A retention purge holds the store's write lock most of the time and fills its
# WAL, and a visitor's request waited for both (bench/bench_purge.py). The journal's commit
# syncs only its own pages; its connection reads the store (attached, read-only) in the same
# statement that adds the lead, so the rate limits count every lead, moved or not. Reads of
# leads first wait for the move of what this process journaled (`Store._settled`).
JOURNAL_SUFFIX = "-intake"
_JOURNAL_COLUMNS = ("id", "widget_id", "phone_hash", "phone_enc", "phone_region", "phone_kind",
                    "name_enc", "email_enc", "consent_marketing", "consent_recording",
                    "clause_version", "created_at")
# The journal's table takes its columns from `leads` (with their types; NOT NULL and the
# other constraints are checked when a lead moves in), so a migration of `leads` is made once.
_JOURNAL_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS new_leads AS SELECT {', '.join(_JOURNAL_COLUMNS)}"
    " FROM store.leads WHERE 0",
    "CREATE UNIQUE INDEX IF NOT EXISTS new_leads_id ON new_leads(id)",
)
MOVE_BATCH = 500  # journaled leads moved into the store per transaction


class Store:
    def __init__(self, db: aiosqlite.Connection, cipher: FieldCipher,
                 write_lock: asyncio.Lock | None = None):
        self._db = db
        self._cipher = cipher
        # One connection serves every task: transactions must not interleave on it. Stores of
        # one process on the same database share the lock (see `open`).
        self.write_lock = write_lock or asyncio.Lock()
        self._path: Path | None = None
        self._journal: aiosqlite.Connection | None = None  # the intake journal (see open)
        self._journal_lock = asyncio.Lock()  # its writers in this process, in turn
        self._journaled: set[str] = set()  # leads this process journaled, not yet moved
        self._moving = asyncio.Lock()
        self._mover: asyncio.Task[None] | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | str, data_key: bytes, *,
                   write_lock: asyncio.Lock | None = None) -> AsyncIterator[Store]:
        """write_lock: pass another Store's `write_lock` when this process opens a second
        connection to the same database (the purge's), or the purge process's TurnLock, which
        asks the engine for turns on its lock. Writers then queue in turn on the lock
        instead of in SQLite's busy handler, which polls with growing sleeps and lets a writer
        that commits and begins again at once starve the others."""
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
            await store.migrate()
            async with _open_journal(path) as store._journal:
                try:
                    # what a stopped process journaled and did not move (any process's)
                    await store._move_new_leads()
                    yield store
                finally:
                    if store._mover is not None:
                        await store._mover  # it logs its own failure: the leads stay journaled
        finally:
            await db.close()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self.write_lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
            except BaseException:
                # Also when cancelled at BEGIN: its thread runs the BEGIN all the same, and a
                # transaction left open would fail every later one on this connection.
                try:
                    await self._db.execute("ROLLBACK")
                except sqlite3.OperationalError:
                    pass  # the BEGIN failed: no transaction to end
                raise
            await self._db.execute("COMMIT")

    async def migrate(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            (version,) = await cursor.fetchone()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            async with self._transaction() as db:
                for statement in _statements(script):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {number}")
        return len(MIGRATIONS)

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cursor:
            return (await cursor.fetchone())[0]

    # ---- agents and groups -----------------------------------------------------------------

    async def add_agent(self, agent: Agent) -> None:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO agents (name, endpoint, enabled) VALUES (?, ?, ?)",
                    (agent.name, agent.endpoint, int(agent.enabled)),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"agent {agent.name!r} exists already") from None

    async def list_agents(self) -> list[Agent]:
        async with self._db.execute("SELECT * FROM agents ORDER BY name") as cursor:
            return [_agent(row) async for row in cursor]

    async def add_group(
        self, name: str, strategy: Strategy, ring_timeout: int, agent_names: list[str]
    ) -> Group:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO agent_groups (name, strategy, ring_timeout) VALUES (?, ?, ?)",
                    (name, strategy.value, ring_timeout),
                )
                for position, agent_name in enumerate(agent_names):
                    async with db.execute(
                        "SELECT 1 FROM agents WHERE name = ?", (agent_name,)
                    ) as cursor:
                        if await cursor.fetchone() is None:
                            raise NotFound("agent", agent_name)
                    await db.execute(
                        "INSERT INTO group_members (group_name, agent_name, position)"
                        " VALUES (?, ?, ?)",
                        (name, agent_name, position),
                    )
        except sqlite3.IntegrityError:
            raise Conflict(f"group {name!r} exists already (or an agent is listed twice)") from None
        return await self.get_group(name)

    async def get_group(self, name: str) -> Group:
        async with self._db.execute("SELECT * FROM agent_groups WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound("group", name)
        async with self._db.execute(
            "SELECT a.* FROM group_members m JOIN agents a ON a.name = m.agent_name"
            " WHERE m.group_name = ? ORDER BY m.position",
            (name,),
        ) as cursor:
            agents = tuple([_agent(r) async for r in cursor])
        return Group(row["name"], Strategy(row["strategy"]), row["ring_timeout"], agents)

    async def list_groups(self) -> list[Group]:
        async with self._db.execute("SELECT name FROM agent_groups ORDER BY name") as cursor:
            names = [row["name"] async for row in cursor]
        return [await self.get_group(name) for name in names]

    # ---- widgets ---------------------------------------------------------------------------

    async def add_widget(self, widget_id: str, name: str, settings: WidgetSettings, now: float) -> Widget:
        await self.get_group(settings.group)  # refuse a widget whose group does not exist
        public_key = "wk_" + secrets.token_urlsafe(18)
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO widgets (id, name, public_key, settings, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (widget_id, name, public_key, json.dumps(settings.to_json()), now),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"widget {widget_id!r} exists already") from None
        return Widget(widget_id, name, public_key, settings)

    async def get_widget(self, widget_id: str) -> Widget:
        return await self._widget_where(self._db, "id = ?", widget_id, widget_id)

    async def get_widget_by_key(self, public_key: str) -> Widget:
        """The widget a visitor's request names. Read on the intake journal's connection, as
        the lead that follows is written: the store's also carries the mover's and the
        engine's transactions, each with its commit, and a read would queue behind them."""
        assert self._journal is not None
        return await self._widget_where(self._journal, "public_key = ?", public_key,
                                        "with that public key", schema="store.")

    async def list_widgets(self) -> list[Widget]:
        async with self._db.execute("SELECT * FROM widgets ORDER BY id") as cursor:
            return [_widget(row) async for row in cursor]

    async def _widget_where(self, db: aiosqlite.Connection, where: str, value: str, label: str,
                            schema: str = "") -> Widget:
        # execute_fetchall: one trip to the SQLite thread (every lead request starts here)
        rows = await db.execute_fetchall(f"SELECT * FROM {schema}widgets WHERE {where}", (value,))
        if not rows:
            raise NotFound("widget", label)
        return _widget(rows[0])

    # ---- leads -----------------------------------------------------------------------------

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
    ) -> Lead:
        """Persist a new lead, queued for dialling now, after the widget's rate limits pass.

        The lead is committed to the intake journal (JOURNAL_SUFFIX) and moved into the store
        right after; reads of leads wait for that move. Check and insert are one INSERT
        statement, so concurrent requests can't both slip under a limit."""
        # UUIDv7: time-ordered, so the ids of leads (and attempts) made together sit together in
        # their indexes and the purge of old ones rewrites few pages (random v4 ids: 2x slower).
        lead_id = str(uuid7())
        settings = widget.settings
        phone_hash = self._cipher.number_hash(phone_e164)
        per_number = (_day(now - 86400), _day(now), phone_hash, now - 86400,
                      phone_hash, now - 86400)
        per_widget = (widget.id, now - 3600, widget.id, now - 3600)
        # One statement, so one trip to the journal's SQLite thread. An INSERT takes the
        # journal's write lock before it reads, so the limits are checked and the row added
        # atomically; what the mover takes into the store meanwhile is counted once.
        assert self._journal is not None
        async with self._journal_lock:
            inserted = await self._journal.execute_fetchall(
                f"INSERT INTO new_leads ({', '.join(_JOURNAL_COLUMNS)})"
                f" SELECT {', '.join('?' * len(_JOURNAL_COLUMNS))}"
                f" WHERE ({_LEADS_PER_NUMBER}) < ? AND ({_LEADS_PER_WIDGET}) < ? RETURNING id",
                (
                    lead_id, widget.id, phone_hash,
                    self._cipher.encrypt(phone_e164, f"leads.phone:{lead_id}"),
                    phone_region, phone_kind,
                    self._cipher.encrypt(name, f"leads.name:{lead_id}"),
                    self._cipher.encrypt(email, f"leads.email:{lead_id}"),
                    int(consent.marketing), int(consent.recording), consent.clause_version,
                    now,
                    *per_number, settings.max_leads_per_number_per_day,
                    *per_widget, settings.max_leads_per_hour,
                ),
            )
        if not inserted:  # a limit was reached: say which
            async with self._journal.execute(_LEADS_PER_NUMBER, per_number) as cursor:
                (count,) = await cursor.fetchone()
            if count >= settings.max_leads_per_number_per_day:
                raise RateLimited("too many callback requests for this number today", 3600)
            raise RateLimited("this widget has reached its hourly limit of callbacks", 600)
        self._journaled.add(lead_id)
        if self._mover is None or self._mover.done():
            self._mover = asyncio.create_task(self._keep_moving(), name="intake-mover")
        return Lead(
            id=lead_id, widget_id=widget.id, phone_e164=phone_e164, phone_region=phone_region,
            phone_kind=phone_kind, name=name, email=email, consent=consent,
            status=LEAD_QUEUED, progress=None, outcome=None, cause=None, attempts=0,
            next_attempt_at=now, created_at=now, closed_at=None,
        )

    async def _keep_moving(self) -> None:
        """The mover task (create_lead starts it): until every journaled lead is in the store."""
        try:
            while self._journaled:
                await self._move_new_leads()
        except Exception:
            log.exception("intake journal: %d new lead(s) not moved into the store yet; the"
                          " next new lead or read of leads tries again", len(self._journaled))

    async def _move_new_leads(self) -> None:
        """Move every lead in the intake journal, whoever journaled it, into the store: each
        batch committed to the store first, then forgotten by the journal (a crash between
        the two leaves rows the next move skips)."""
        assert self._journal is not None
        async with self._moving:
            while True:
                before = set(self._journaled)
                rows = await self._journal.execute_fetchall(
                    f"SELECT {', '.join(_JOURNAL_COLUMNS)} FROM new_leads ORDER BY created_at"
                    f" LIMIT {MOVE_BATCH}")
                if not rows:
                    self._journaled -= before  # moved by another process's Store
                    return
                async with self._transaction() as db:
                    await db.executemany(
                        _MOVE_LEAD, [(*row, row["created_at"], row["created_at"]) for row in rows])
                moved = [row["id"] for row in rows]
                async with self._journal_lock:
                    # Without its own fsync: the next lead's commit syncs the journal's log up
                    # to here. Lost to a power cut, the rows are moved again, and skipped.
                    await self._journal.execute("PRAGMA synchronous=NORMAL")
                    try:
                        await self._journal.execute(
                            f"DELETE FROM new_leads WHERE id IN ({', '.join('?' * len(moved))})",
                            moved)
                    finally:
                        await self._journal.execute("PRAGMA synchronous=FULL")
                self._journaled.difference_update(moved)

    async def _settled(self) -> None:
        """Reads of leads call this first: they see every lead this process journaled."""
        if self._journaled:
            await self._move_new_leads()

    async def get_lead(self, lead_id: str) -> Lead:
        await self._settled()
        async with self._db.execute("SELECT * FROM leads WHERE id = ?", (lead_id,)) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise NotFound("lead", lead_id)
        return self._lead(row)

    async def list_leads(
        self, *, widget_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Lead]:
        await self._settled()
        clauses, params = [], []
        if widget_id is not None:
            clauses.append("widget_id = ?")
            params.append(widget_id)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self._db.execute(
            f"SELECT * FROM leads {where} ORDER BY created_at DESC LIMIT ?", (*params, limit)
        ) as cursor:
            return [self._lead(row) async for row in cursor]

    async def due_leads(self, now: float, limit: int) -> list[Lead]:
        await self._settled()
        async with self._db.execute(
            # status spelled out (not bound): that is how SQLite sees leads_queued applies
            f"SELECT * FROM leads WHERE status = '{LEAD_QUEUED}' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, created_at LIMIT ?",
            (now, limit),
        ) as cursor:
            return [self._lead(row) async for row in cursor]

    async def next_due_at(self) -> float | None:
        await self._settled()
        async with self._db.execute(
            f"SELECT MIN(next_attempt_at) FROM leads WHERE status = '{LEAD_QUEUED}'"
        ) as cursor:
            return (await cursor.fetchone())[0]

    # ---- attempts --------------------------------------------------------------------------

    async def start_attempt(self, lead_id: str, now: float) -> Attempt:
        """Mark the lead as being called and open an attempt: committed before any dial."""
        await self._settled()
        attempt_id = str(uuid7())
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE leads SET status = ?, attempts = attempts + 1, progress = NULL,"
                " next_attempt_at = NULL, updated_at = ? WHERE id = ? AND status = ?",
                (LEAD_CALLING, now, lead_id, LEAD_QUEUED),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"lead {lead_id} is not queued")
            async with db.execute("SELECT attempts FROM leads WHERE id = ?", (lead_id,)) as cur:
                (number,) = await cur.fetchone()
            await db.execute(
                "INSERT INTO attempts (id, lead_id, number, status, started_at)"
                " VALUES (?, ?, ?, 'active', ?)",
                (attempt_id, lead_id, number, now),
            )
        return Attempt(attempt_id, lead_id, number, "active", now)

    async def set_progress(self, lead_id: str, progress: str, connected: bool, attempt_id: str, now: float) -> None:
        async with self._transaction() as db:
            await db.execute(
                "UPDATE leads SET progress = ?, updated_at = ? WHERE id = ?",
                (progress, now, lead_id),
            )
            if connected:
                await db.execute("UPDATE attempts SET connected = 1 WHERE id = ?", (attempt_id,))

    async def finish_attempt(
        self, attempt: Attempt, result: Result, now: float, retry_at: float | None
    ) -> Lead:
        """Close the attempt with its result; queue the lead again or close it, atomically."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE attempts SET status = 'done', ended_at = ?, outcome = ?, q850 = ?,"
                " cause = ?, agent = ?, agent_ring_s = ?, visitor_ring_s = ?, talk_s = ?,"
                " connected = ? WHERE id = ?",
                (
                    now, result.outcome.value, result.q850, result.cause, result.agent,
                    result.agent_ring_s, result.visitor_ring_s, result.talk_s,
                    int(result.connected), attempt.id,
                ),
            )
            if retry_at is not None:
                await db.execute(
                    "UPDATE leads SET status = ?, next_attempt_at = ?, progress = NULL,"
                    " outcome = ?, cause = ?, updated_at = ? WHERE id = ?",
                    (LEAD_QUEUED, retry_at, result.outcome.value, result.cause, now,
                     attempt.lead_id),
                )
            else:
                await db.execute(
                    "UPDATE leads SET status = ?, outcome = ?, cause = ?, progress = NULL,"
                    " closed_at = ?, updated_at = ? WHERE id = ?",
                    (LEAD_DONE, result.outcome.value, result.cause, now, now, attempt.lead_id),
                )
        return await self.get_lead(attempt.lead_id)

    async def active_attempts(self) -> list[Attempt]:
        async with self._db.execute(
            "SELECT * FROM attempts WHERE status = 'active' ORDER BY started_at"
        ) as cursor:
            return [_attempt(row) async for row in cursor]

    async def attempts_for(self, lead_id: str) -> list[Attempt]:
        async with self._db.execute(
            "SELECT * FROM attempts WHERE lead_id = ? ORDER BY number", (lead_id,)
        ) as cursor:
            return [_attempt(row) async for row in cursor]


    # ---- recordings ------------------------------------------------------------------------

    async def add_recording(
        self, recording_id: str, attempt: Attempt, route: str, key_id: str, now: float, *,
        sample_rate: int,
    ) -> None:
        """Registered before the tap starts: a crash mid-call leaves a row to mark incomplete."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO recordings (id, lead_id, attempt_id, route, key_id, status,"
                " started_at, sample_rate) VALUES (?, ?, ?, ?, ?, 'recording', ?, ?)",
                (recording_id, attempt.lead_id, attempt.id, route, key_id, now, sample_rate),
            )

    async def finish_recording(
        self, recording_id: str, *, status: str, now: float, duration_s: float, bytes_in: int,
        segments: int, sha256: str | None, problem: str | None,
    ) -> None:
        """The sample rate stays what add_recording set: a recording's rate never changes."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE recordings SET status = ?, ended_at = ?, duration_s = ?, bytes = ?,"
                " segments = ?, sha256 = ?, problem = ? WHERE id = ?",
                (status, now, duration_s, bytes_in, segments, sha256, problem, recording_id),
            )

    async def recordings_in_progress(self) -> list[Recording]:
        return await self._recordings_where("r.status = 'recording'", ())

    async def get_recording(self, recording_id: str) -> Recording:
        found = await self._recordings_where("r.id = ?", (recording_id,))
        if not found:
            raise NotFound("recording", recording_id)
        return found[0]

    async def list_recordings(self, *, lead_id: str | None = None,
                              include_deleted: bool = False) -> list[Recording]:
        clauses, params = [], []
        if lead_id is not None:
            clauses.append("r.lead_id = ?")
            params.append(lead_id)
        if not include_deleted:
            clauses.append("r.status != 'deleted'")
        return await self._recordings_where(" AND ".join(clauses) or "1", tuple(params))

    async def mark_recording_deleted(self, recording_id: str, now: float) -> None:
        """The row stays as a tombstone (it holds no personal data): reports stay right."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = ?",
                (now, recording_id),
            )

    async def _recordings_where(self, where: str, params: tuple) -> list[Recording]:
        async with self._db.execute(
            "SELECT r.*, l.phone_enc, l.widget_id FROM recordings r"
            f" JOIN leads l ON l.id = r.lead_id WHERE {where} ORDER BY r.started_at",
            params,
        ) as cursor:
            return [self._recording(row) async for row in cursor]


    # ---- retention -------------------------------------------------------------------------

    async def acquire_lease(self, name: str, owner: str, now: float, ttl_s: float) -> bool:
        """Take (or renew) the named lease; False while another owner holds an unexpired one."""
        async with self._transaction() as db:
            async with db.execute(
                "SELECT owner, expires_at FROM job_leases WHERE name = ?", (name,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None and row["owner"] != owner and row["expires_at"] > now:
                return False
            await db.execute(
                "INSERT INTO job_leases (name, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at",
                (name, owner, now + ttl_s),
            )
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM job_leases WHERE name = ? AND owner = ?", (name, owner))

    async def count_expired_recordings(self, widget_id: str, cutoff: float) -> int:
        async with self._db.execute(
            f"SELECT COUNT(*) {_EXPIRED_RECORDINGS}", (cutoff, widget_id)
        ) as cursor:
            return (await cursor.fetchone())[0]

    async def count_expired_leads(self, widget_id: str, cutoff: float) -> int:
        async with self._db.execute(
            f"SELECT COUNT(*) {_EXPIRED_LEADS}", (widget_id, cutoff)
        ) as cursor:
            return (await cursor.fetchone())[0]

    async def live_recording_ids(self, lead_ids: list[str]) -> list[str]:
        found: list[str] = []
        for chunk in _chunks(lead_ids, 500):
            async with self._db.execute(_live_recordings_of(len(chunk)), chunk) as cursor:
                found += [row[0] for row in await cursor.fetchall()]
        return found

    async def live_recording_id_set(self) -> set[str]:
        async with self._db.execute(
            "SELECT id FROM recordings WHERE status != 'deleted'"
        ) as cursor:
            return {row[0] for row in await cursor.fetchall()}

    async def purge_leads(self, lead_ids: list[str], now: float, reason: str) -> int:
        """Tombstone and delete the leads (attempts and recording rows go with them), in one
        transaction: a crash leaves every lead of the batch either whole or purged."""
        purged = 0
        async with self._transaction() as db:
            for chunk in _chunks(lead_ids, 500):
                tombstone, delete = _purge_statements(len(chunk))
                await db.execute(tombstone, (now, reason, *chunk))
                cursor = await db.execute(delete, chunk)
                purged += cursor.rowcount
        return purged

    @asynccontextmanager
    async def purge_batches(self, thread_initializer: Callable[[], None] | None = None
                            ) -> AsyncIterator[PurgeBatches]:
        """The retention purge's hot path, on a connection of its own (see PurgeBatches);
        thread_initializer runs first in its worker thread."""
        if self._path is None:
            raise ValueError("an in-memory store has no second connection for a purge")
        batches = PurgeBatches(self._path, self.write_lock, thread_initializer)
        try:
            await batches.open()
            yield batches
        finally:
            await batches.close()

    async def count_tombstones(self, widget_id: str | None = None) -> int:
        where, params = ("WHERE widget_id = ?", (widget_id,)) if widget_id else ("", ())
        async with self._db.execute(
            f"SELECT COUNT(*) FROM lead_tombstones {where}", params
        ) as cursor:
            return (await cursor.fetchone())[0]


    # ---- reports -------------------------------------------------------------------------

    async def report_rows(self, widget_id: str, start: float, end: float
                          ) -> list[tuple[Lead | None, dict[str, Any]]]:
        """Every lead of the widget created in [start, end), with its last attempt and whether
        it was recorded; purged and erased leads come from their tombstones (no Lead)."""
        await self._settled()
        rows: list[tuple[Lead | None, dict[str, Any]]] = []
        async with self._db.execute(
            "SELECT l.*, a.agent AS a_agent, a.agent_ring_s AS a_agent_ring_s,"
            " a.visitor_ring_s AS a_visitor_ring_s, a.talk_s AS a_talk_s, a.q850 AS a_q850,"
            " (SELECT COUNT(*) FROM recordings r WHERE r.lead_id = l.id) AS a_recordings"
            " FROM leads l LEFT JOIN attempts a ON a.lead_id = l.id AND a.number = l.attempts"
            " WHERE l.widget_id = ? AND l.created_at >= ? AND l.created_at < ?"
            " ORDER BY l.created_at",
            (widget_id, start, end),
        ) as cursor:
            async for row in cursor:
                extra = {key[2:]: row[key] for key in row.keys() if key.startswith("a_")}
                rows.append((self._lead(row), extra))
        async with self._db.execute(
            "SELECT * FROM lead_tombstones WHERE widget_id = ? AND created_at >= ?"
            " AND created_at < ? ORDER BY created_at",
            (widget_id, start, end),
        ) as cursor:
            rows += [(None, dict(row)) async for row in cursor]
        return rows

    # ---- data subjects ---------------------------------------------------------------------

    async def leads_for_number(self, e164: str) -> list[Lead]:
        await self._settled()
        async with self._db.execute(
            # Every day of leads_day_phone: the index alone says which rows hold the number.
            f"SELECT * FROM leads WHERE {LEAD_DAY} >= ? AND phone_hash = ? ORDER BY created_at",
            (-(2**62), self._cipher.number_hash(e164)),
        ) as cursor:
            return [self._lead(row) async for row in cursor]

    async def forget_deleted_pages(self) -> None:
        """After an erasure: fold the WAL back into the database file and truncate it, so old
        page images holding the erased rows don't linger in the log (secure_delete zeroes the
        pages in the database itself)."""
        await self._settled()
        await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert self._journal is not None
        await self._journal.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ---- tokens and audit ------------------------------------------------------------------

    async def add_token(self, name: str, role: Role, token_hash: str, now: float) -> None:
        try:
            async with self._transaction() as db:
                await db.execute(
                    "INSERT INTO api_tokens (name, role, token_hash, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, role.value, token_hash, now),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"token {name!r} exists already") from None

    async def revoke_token(self, name: str, now: float) -> None:
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (now, name),
            )
            if cursor.rowcount != 1:
                raise NotFound("active token", name)

    async def principal_for(self, token_hash: str) -> Principal | None:
        async with self._db.execute(
            "SELECT name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else Principal(row["name"], Role(row["role"]))

    async def list_tokens(self) -> list[dict[str, Any]]:
        async with self._db.execute(
            "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name"
        ) as cursor:
            return [dict(row) async for row in cursor]

    async def audit(self, principal: Principal, action: str, target: str, detail: str,
                    now: float) -> AuditEntry:
        """Append one entry to the hash chain (never personal data in target or detail)."""
        async with self._transaction() as db:
            async with db.execute(
                "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
            ) as cursor:
                last = await cursor.fetchone()
            seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
            entry_hash = chain_hash(prev, seq, now, principal.actor, principal.role.value,
                                    action, target, detail)
            await db.execute(
                "INSERT INTO audit_log (seq, at, actor, role, action, target, detail,"
                " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, now, principal.actor, principal.role.value, action, target, detail,
                 prev, entry_hash),
            )
        return AuditEntry(seq, now, principal.actor, principal.role.value, action, target,
                          detail, prev, entry_hash)

    async def audit_entries(self) -> list[AuditEntry]:
        async with self._db.execute("SELECT * FROM audit_log ORDER BY seq") as cursor:
            return [AuditEntry(**dict(row)) async for row in cursor]


    # ---- rows → records (personal fields decrypted here, and only here) ----------------------

    def _lead(self, row: sqlite3.Row) -> Lead:
        lead_id = row["id"]
        return Lead(
            id=lead_id,
            widget_id=row["widget_id"],
            phone_e164=self._cipher.decrypt(row["phone_enc"], f"leads.phone:{lead_id}") or "",
            phone_region=row["phone_region"],
            phone_kind=row["phone_kind"],
            name=self._cipher.decrypt(row["name_enc"], f"leads.name:{lead_id}"),
            email=self._cipher.decrypt(row["email_enc"], f"leads.email:{lead_id}"),
            consent=Consent(
                bool(row["consent_marketing"]), bool(row["consent_recording"]),
                row["clause_version"],
            ),
            status=row["status"],
            progress=row["progress"],
            outcome=row["outcome"],
            cause=row["cause"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            created_at=row["created_at"],
            closed_at=row["closed_at"],
        )

    def _recording(self, row: sqlite3.Row) -> Recording:
        fields: dict[str, Any] = {key: row[key] for key in row.keys() if key != "phone_enc"}
        fields["phone_e164"] = self._cipher.decrypt(
            row["phone_enc"], f"leads.phone:{row['lead_id']}") or ""
        return Recording(**fields)


# The rate limits' counts, run on the intake journal's connection: leads of number-hash ? in
# the last day (rows of today's and yesterday's days of leads_day_phone), leads of widget ? in
# the last hour; in the store and in the journal, where a lead moved but not yet forgotten is
# not counted twice.
_NOT_MOVED = "NOT EXISTS (SELECT 1 FROM store.leads l WHERE l.id = j.id)"
_LEADS_PER_NUMBER = (
    f"SELECT (SELECT COUNT(*) FROM store.leads WHERE {LEAD_DAY} IN (?, ?) AND phone_hash = ?"
    " AND created_at > ?) + (SELECT COUNT(*) FROM new_leads j WHERE phone_hash = ?"
    f" AND created_at > ? AND {_NOT_MOVED})"
)
_LEADS_PER_WIDGET = (
    "SELECT (SELECT COUNT(*) FROM store.leads WHERE widget_id = ? AND created_at > ?)"
    f" + (SELECT COUNT(*) FROM new_leads j WHERE widget_id = ? AND created_at > ? AND {_NOT_MOVED})"
)
# A journaled lead into the store: queued, due at once (OR IGNORE: moved already).
_MOVE_LEAD = (
    f"INSERT OR IGNORE INTO leads ({', '.join(_JOURNAL_COLUMNS)}, status, next_attempt_at,"
    f" updated_at) VALUES ({', '.join('?' * len(_JOURNAL_COLUMNS))}, '{LEAD_QUEUED}', ?, ?)"
)


@asynccontextmanager
async def _open_journal(database: Path) -> AsyncIterator[aiosqlite.Connection]:
    """The intake journal beside `database`, with the store attached read-only as `store`."""
    journal = database.with_name(database.name + JOURNAL_SUFFIX)
    db = await aiosqlite.connect(_file_uri(journal), uri=True, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=5000",
                       "secure_delete=ON"):
            await db.execute(f"PRAGMA {pragma}")
        await db.execute("ATTACH DATABASE ? AS store", (_file_uri(database) + "?mode=ro",))
        for statement in _JOURNAL_SCHEMA:
            await db.execute(statement)
        yield db
    finally:
        await db.close()


def _file_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.resolve()))


# ---- the retention purge's statements, shared by Store and PurgeBatches ---------------------

# Live recordings started before ? of widget ?. CROSS JOIN keeps SQLite walking the partial
# index of live recordings (measured: the plain join walked every lead of the widget and
# re-skipped the deleted recordings).
_EXPIRED_RECORDINGS = (
    "FROM recordings r CROSS JOIN leads l ON l.id = r.lead_id"
    " WHERE r.status NOT IN ('deleted', 'recording') AND r.started_at < ? AND l.widget_id = ?"
)
# Closed leads of widget ? created before ? (open ones are never purged).
_EXPIRED_LEADS = f"FROM leads WHERE widget_id = ? AND status = '{LEAD_DONE}' AND created_at < ?"


def _live_recordings_of(leads: int) -> str:
    marks = ",".join("?" * leads)
    return f"SELECT id FROM recordings WHERE lead_id IN ({marks}) AND status != 'deleted'"


def _purge_statements(leads: int) -> tuple[str, str]:
    """(tombstone, delete) for that many lead ids; the tombstone takes (now, reason, *ids)."""
    marks = ",".join("?" * leads)
    return (
        "INSERT OR REPLACE INTO lead_tombstones (id, widget_id, created_at, closed_at, outcome,"
        " attempts, consent_marketing, consent_recording, clause_version, purged_at, reason)"
        " SELECT id, widget_id, created_at, closed_at, outcome, attempts, consent_marketing,"
        f" consent_recording, clause_version, ?, ? FROM leads WHERE id IN ({marks})",
        f"DELETE FROM leads WHERE id IN ({marks})",
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
        return await self._call(self._select, f"SELECT r.id {_EXPIRED_RECORDINGS} LIMIT ?",
                                (cutoff, widget_id, limit))

    async def mark_recordings_deleted(self, recording_ids: list[str], now: float) -> None:
        async with self._write_lock:
            await self._call(self._mark_deleted, recording_ids, now)

    async def expired_leads(self, widget_id: str, cutoff: float, limit: int
                            ) -> tuple[list[str], list[str]]:
        """Up to `limit` expired leads of the widget, oldest first, and their live recordings,
        whose keys must go before the leads' rows (purge_leads). Reads only: no write lock."""
        return await self._call(self._expired_leads, widget_id, cutoff, limit)

    async def purge_leads(self, lead_ids: list[str], now: float, reason: str) -> int:
        async with self._write_lock:
            return await self._call(self._purge, lead_ids, now, reason)

    def after_batch(self) -> None:
        """Called after each batch: at most every PURGE_CHECKPOINT_EVERY_S, unless the last one
        still runs, start a checkpoint on its own thread (PASSIVE: it never waits for anyone).
        So the WAL is folded on the purge's time, never by an intake commit that finds it past
        WAL_AUTOCHECKPOINT_PAGES. (A checkpoint after each batch, awaited, took a quarter of the
        purge's time; one after each batch beside them wrote 1.6x the bytes.)"""
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
        with _immediate(self._db):
            self._db.executemany(
                "UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = ?",
                [(now, rid) for rid in recording_ids])

    def _expired_leads(self, widget_id: str, cutoff: float, limit: int
                       ) -> tuple[list[str], list[str]]:
        lead_ids = self._select(f"SELECT id {_EXPIRED_LEADS} ORDER BY created_at LIMIT ?",
                                (widget_id, cutoff, limit))
        recording_ids = [rid for chunk in _chunks(lead_ids, 500)
                         for rid in self._select(_live_recordings_of(len(chunk)), tuple(chunk))]
        return lead_ids, recording_ids

    def _purge(self, lead_ids: list[str], now: float, reason: str) -> int:
        assert self._db is not None
        purged = 0
        with _immediate(self._db):
            for chunk in _chunks(lead_ids, 500):
                tombstone, delete = _purge_statements(len(chunk))
                self._db.execute(tombstone, (now, reason, *chunk))
                purged += self._db.execute(delete, chunk).rowcount
        return purged

    def _checkpoint(self) -> None:
        assert self._checkpoint_db is not None
        try:
            self._checkpoint_db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.OperationalError:
            pass  # busy: the next one will do it


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """Split a migration into statements (a trigger's body holds ';' of its own)."""
    statements, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                statements.append(buffer)
            buffer = ""
    if buffer.strip(" \n;"):
        statements.append(buffer)
    return statements


def _day(t: float) -> int:
    """The day number LEAD_DAY gives a lead created at t (SQLite's CAST truncates like int)."""
    return int(t / 86400)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# ---- rows → records -------------------------------------------------------------------------


def _agent(row: sqlite3.Row) -> Agent:
    return Agent(row["name"], row["endpoint"], bool(row["enabled"]))


def _widget(row: sqlite3.Row) -> Widget:
    settings = widget_settings_from_input(json.loads(row["settings"]))
    return Widget(row["id"], row["name"], row["public_key"], settings)


def _attempt(row: sqlite3.Row) -> Attempt:
    fields: dict[str, Any] = {key: row[key] for key in row.keys()}
    fields["connected"] = bool(fields["connected"])
    return Attempt(**fields)


class KeyStore:
    """The recording keystore: one sealed key per recording, in its own SQLite file.

    Kept apart from the store and from backups on purpose: deleting a recording's entry here
    is what crypto-shreds it — every copy of the file, backups included, becomes undecryptable.
    Back the keystore up on its own, short-lived schedule (docs/backup.md)."""

    def __init__(self, db: aiosqlite.Connection):
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path | str) -> AsyncIterator[KeyStore]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA secure_delete=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute(
                "CREATE TABLE IF NOT EXISTS recording_keys ("
                " recording_id TEXT PRIMARY KEY, sealed_key BLOB NOT NULL, created_at REAL)"
            )
            os.chmod(path, 0o600)
            yield cls(db)
        finally:
            await db.close()

    async def put(self, recording_id: str, sealed_key: bytes, now: float) -> None:
        async with self._lock:
            await self._db.execute(
                "INSERT INTO recording_keys (recording_id, sealed_key, created_at)"
                " VALUES (?, ?, ?)",
                (recording_id, sealed_key, now),
            )

    async def get(self, recording_id: str) -> bytes | None:
        async with self._db.execute(
            "SELECT sealed_key FROM recording_keys WHERE recording_id = ?", (recording_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else bytes(row[0])

    async def delete(self, recording_ids: list[str], *, truncate_log: bool = True) -> None:
        """Destroy the keys (overwritten in the file, log truncated): the shred itself. A
        purge deleting batch after batch truncates the log once at its end (truncate_log)."""
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                for chunk in _chunks(recording_ids, 500):
                    marks = ",".join("?" * len(chunk))
                    await self._db.execute(
                        f"DELETE FROM recording_keys WHERE recording_id IN ({marks})", chunk
                    )
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
            if truncate_log:
                await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def truncate_log(self) -> None:
        """Fold the log into the file (secure_delete has zeroed the deleted keys there) and
        empty it, so no copy of a deleted key is left in it."""
        async with self._lock:
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def count(self) -> int:
        async with self._db.execute("SELECT COUNT(*) FROM recording_keys") as cursor:
            return (await cursor.fetchone())[0]
