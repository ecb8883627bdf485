"""The schema: its migrations, applied in order at open, and how to split one into statements.

Times are Unix seconds (float). The journal's table (intake.py) takes its columns from `leads`,
so a migration of `leads` is written once, here.
"""

from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite

from callengine.storage.transactions import transaction

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
    # The keyed audit chain (docs/audit.md): the store's identity (which anchor outside the
    # store is its) and the seq from which entries are MAC'd under the audit key; the entries
    # made before keep verifying with the old unkeyed rule.
    """
    CREATE TABLE audit_meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO audit_meta (name, value) VALUES ('store_id', lower(hex(randomblob(16))));
    INSERT INTO audit_meta (name, value)
        SELECT 'keyed_from', CAST(COALESCE(MAX(seq), 0) + 1 AS TEXT) FROM audit_log
    """,
    # Per-subject keys (docs/backup.md): a lead names its data subject by a random id; the
    # number's keyed hash moves to the keystore. storage/rekey.py then re-encrypts the existing
    # rows under their subjects' keys and drops phone_hash (it needs the keystore: not SQL).
    """
    ALTER TABLE leads ADD COLUMN subject_id TEXT;
    CREATE INDEX leads_day_subject ON leads(CAST(created_at / 86400 AS INTEGER), subject_id)
    """,
    # Calling hours: when a lead asked to be called (a slot, or the next opening after hours);
    # the slots' capacity counts a widget's leads by it.
    """
    ALTER TABLE leads ADD COLUMN scheduled_for REAL;
    CREATE INDEX leads_scheduled ON leads(widget_id, scheduled_for)
        WHERE scheduled_for IS NOT NULL;
    """,
    # Consent evidence (docs/consent.md): the information clauses a widget shows, one row per
    # widget, language and version, with the SHA-256 of the exact UTF-8 text; the recording
    # notice shown with it (when the widget records) is versioned inside the same row.
    """
    CREATE TABLE clauses (
        widget_id TEXT NOT NULL REFERENCES widgets(id),
        language TEXT NOT NULL,
        version TEXT NOT NULL,
        text TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        privacy_url TEXT NOT NULL,
        notice_version TEXT,
        notice_text TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (widget_id, language, version)
    )
    """,
    # Consent evidence per lead (docs/consent.md): the clause's hash and language (null: an
    # unregistered clause), the recording notice's version shown, when consent was given and
    # the page's origin; a tombstone keeps what is not personal of it; each attempt says
    # whether the in-call recording notice was played.
    """
    ALTER TABLE leads ADD COLUMN clause_sha256 TEXT;
    ALTER TABLE leads ADD COLUMN clause_language TEXT;
    ALTER TABLE leads ADD COLUMN notice_version TEXT;
    ALTER TABLE leads ADD COLUMN consent_at REAL;
    ALTER TABLE leads ADD COLUMN origin TEXT;
    ALTER TABLE lead_tombstones ADD COLUMN clause_sha256 TEXT;
    ALTER TABLE lead_tombstones ADD COLUMN clause_language TEXT;
    ALTER TABLE lead_tombstones ADD COLUMN notice_version TEXT;
    ALTER TABLE attempts ADD COLUMN notice_played INTEGER NOT NULL DEFAULT 0
        CHECK (notice_played IN (0, 1))
    """,
    # People (services/users.py): panel accounts with a role, their argon2id password hashes
    # and encrypted TOTP secrets; their sessions (only the token's hash); the login throttle,
    # keyed by the HMAC of the account name or of the client's address (never either itself).
    """
    CREATE TABLE users (
        username TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent', 'viewer')),
        password_hash TEXT NOT NULL,
        totp_enc BLOB,
        totp_last_step INTEGER,
        created_at REAL NOT NULL,
        disabled_at REAL,
        last_login_at REAL
    );
    CREATE TABLE user_sessions (
        token_hash TEXT PRIMARY KEY,
        username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        pending INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1))
    );
    CREATE INDEX user_sessions_user ON user_sessions(username);
    CREATE TABLE login_throttle (
        key TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        first_at REAL NOT NULL,
        locked_until REAL
    )
    """,
    # A widget can be disabled (services/configuration.py): it takes no new leads while its
    # accepted ones are still called; NULL = enabled.
    """
    ALTER TABLE widgets ADD COLUMN disabled_at REAL
    """,
    # The leads' listing (newest first, filtered by status, outcome or creation date, with or
    # without a widget) and its count walk leads by created_at: without this index, every
    # listing without a widget sorted the whole table (1,000,000 leads: 3-4 s a page; with it,
    # ~10 ms; a date range without a widget 350-450 ms → ~10 ms).
    """
    CREATE INDEX leads_created ON leads(created_at)
    """,
    # Webhooks (storage/queries/webhooks.py, docs/webhooks.md): the CRMs' endpoints (the
    # secret encrypted with the field cipher, the previous one valid until previous_until after
    # a rotation); the outbox of events, written in the transaction of the change each reports
    # (no personal field: the number is added when delivered); one delivery per event and
    # endpoint, claimed by a lease (locked_until), with each attempt's status and latency.
    """
    CREATE TABLE webhook_endpoints (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        events TEXT NOT NULL,
        full_numbers INTEGER NOT NULL DEFAULT 0 CHECK (full_numbers IN (0, 1)),
        enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        secret_enc BLOB NOT NULL,
        previous_secret_enc BLOB,
        previous_until REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE webhook_events (
        id TEXT PRIMARY KEY,
        dedup TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        lead_id TEXT,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
        endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL,
        locked_until REAL,
        last_code INTEGER,
        last_error TEXT,
        last_latency_ms REAL,
        created_at REAL NOT NULL,
        delivered_at REAL,
        UNIQUE (event_id, endpoint_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, status);
    CREATE TABLE webhook_attempts (
        delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        at REAL NOT NULL,
        code INTEGER,
        latency_ms REAL NOT NULL,
        error TEXT,
        PRIMARY KEY (delivery_id, number)
    )
    """,
    # The metrics' leads by status and outcome (storage/queries/leads.py lead_counts, at each
    # scrape): a covering index, read in its order (no sort); 100,000 leads: 89-175 ms a
    # scrape without it, ~19 ms with it.
    """
    CREATE INDEX leads_outcomes ON leads(status, outcome)
    """,
    # Ring strategies (callengine/ringorder.py): the groups take round-robin, least-recent and
    # random too (SQLite can't change a CHECK: agent_groups is made again, and group_members,
    # whose rows its drop would otherwise cascade away); each round-robin group's rotation (the
    # agent endpoint its last call started with); each agent's last call's end, by index.
    """
    CREATE TABLE group_members_old AS SELECT group_name, agent_name, position FROM group_members;
    CREATE TABLE agent_groups_old AS SELECT name, strategy, ring_timeout FROM agent_groups;
    DROP TABLE group_members;
    DROP TABLE agent_groups;
    CREATE TABLE agent_groups (
        name TEXT PRIMARY KEY,
        strategy TEXT NOT NULL CHECK (strategy IN
            ('ring-all', 'sequential', 'round-robin', 'least-recent', 'random')),
        ring_timeout INTEGER NOT NULL
    );
    CREATE TABLE group_members (
        group_name TEXT NOT NULL REFERENCES agent_groups(name) ON DELETE CASCADE,
        agent_name TEXT NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        PRIMARY KEY (group_name, agent_name)
    );
    INSERT INTO agent_groups (name, strategy, ring_timeout)
        SELECT name, strategy, ring_timeout FROM agent_groups_old;
    INSERT INTO group_members (group_name, agent_name, position)
        SELECT group_name, agent_name, position FROM group_members_old;
    DROP TABLE group_members_old;
    DROP TABLE agent_groups_old;
    CREATE TABLE group_rotation (
        group_name TEXT PRIMARY KEY REFERENCES agent_groups(name) ON DELETE CASCADE,
        started_with TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX attempts_agent_ended ON attempts(agent, ended_at) WHERE agent IS NOT NULL
    """,
    # The webhooks' outbox is pruned (storage/queries/webhooks.py prune_outbox, at each
    # retention run): delivered deliveries by their delivery time, dead ones by their creation.
    """
    CREATE INDEX webhook_deliveries_settled ON webhook_deliveries(status, delivered_at,
        created_at) WHERE status != 'pending'
    """,
    # Press-a-digit to accept (callengine/flow.py, State.ACCEPT): per group the digit (NULL:
    # off) and the seconds to press it in; per attempt the agents asked and their answers,
    # as JSON ([{"agent", "answer", "at", "digit"?}], NULL: nobody was asked).
    """
    ALTER TABLE agent_groups ADD COLUMN accept_digit TEXT
        CHECK (accept_digit IS NULL OR length(accept_digit) = 1);
    ALTER TABLE agent_groups ADD COLUMN accept_timeout INTEGER NOT NULL DEFAULT 10;
    ALTER TABLE attempts ADD COLUMN acceptances TEXT
    """,
    # An agent's pause (API, CLI, the phone's feature code): kept over restarts.
    """
    ALTER TABLE agents ADD COLUMN paused INTEGER NOT NULL DEFAULT 0
    """,
    # A queue callback's lead (callengine/queue_callback.py): the queue the caller left, when
    # they had joined it (their place in line), and the consent evidence of the call (the
    # prompts heard and the keys pressed, JSON; no number in it). Goes with its lead.
    """
    CREATE TABLE queue_callbacks (
        lead_id TEXT PRIMARY KEY REFERENCES leads(id) ON DELETE CASCADE,
        queue TEXT NOT NULL,
        joined_at REAL NOT NULL,
        evidence TEXT NOT NULL
    )
    """,
    # The engine that started an attempt ([dialing] engine_id): after a restart an engine
    # closes its own open attempts only (NULL: started before attempts named their engine).
    """
    ALTER TABLE attempts ADD COLUMN engine TEXT
    """,
]

# The leading expression of leads_day_phone: a query must spell it exactly so to use the index.
LEAD_DAY = "CAST(created_at / 86400 AS INTEGER)"


def day(t: float) -> int:
    """The day number LEAD_DAY gives a lead created at t (SQLite's CAST truncates like int)."""
    return int(t / 86400)


def split_statements(script: str) -> list[str]:
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


async def schema_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        return (await cursor.fetchone())[0]


async def migrate(db: aiosqlite.Connection, write_lock: asyncio.Lock) -> int:
    """Apply the migrations the database lacks, each in a transaction of its own (with its
    new user_version); returns the version reached."""
    version = await schema_version(db)
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        async with write_lock, transaction(db):
            for statement in split_statements(script):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {number}")
    return len(MIGRATIONS)
