"""The PostgreSQL schema: the SQLite schema's final shape (storage/schema.py, version 22) in
PostgreSQL's types, and the migrations after it. Each entry moves the schema one version up;
never edit one that has shipped, add a new one (and the same change to the SQLite schema).

Types: SQLite's REAL is `double precision` (Unix seconds), BLOB `bytea`, INTEGER `integer`
(its SUM is a bigint, read as int; a bigint's SUM would be numeric). JSON is kept as text, as
in SQLite (dialect.py reads it as jsonb where a query looks inside). The audit log's
append-only rule is a trigger, as in SQLite.
"""

from __future__ import annotations

# The version the SQLite schema has when it matches PG_MIGRATIONS[0].
SQLITE_VERSION = 22

PG_MIGRATIONS: list[str] = [
    """
    CREATE TABLE agents (
        name text PRIMARY KEY,
        endpoint text NOT NULL,
        enabled integer NOT NULL DEFAULT 1,
        paused integer NOT NULL DEFAULT 0
    );
    CREATE TABLE agent_groups (
        name text PRIMARY KEY,
        strategy text NOT NULL CHECK (strategy IN
            ('ring-all', 'sequential', 'round-robin', 'least-recent', 'random')),
        ring_timeout integer NOT NULL,
        accept_digit text CHECK (accept_digit IS NULL OR length(accept_digit) = 1),
        accept_timeout integer NOT NULL DEFAULT 10
    );
    CREATE TABLE group_members (
        group_name text NOT NULL REFERENCES agent_groups(name) ON DELETE CASCADE,
        agent_name text NOT NULL REFERENCES agents(name) ON DELETE CASCADE,
        position integer NOT NULL,
        PRIMARY KEY (group_name, agent_name)
    );
    CREATE TABLE group_rotation (
        group_name text PRIMARY KEY REFERENCES agent_groups(name) ON DELETE CASCADE,
        started_with text NOT NULL,
        updated_at double precision NOT NULL
    );
    CREATE TABLE widgets (
        id text PRIMARY KEY,
        name text NOT NULL,
        public_key text NOT NULL UNIQUE,
        settings text NOT NULL,
        created_at double precision NOT NULL,
        disabled_at double precision
    );
    CREATE TABLE leads (
        id text PRIMARY KEY,
        widget_id text NOT NULL REFERENCES widgets(id),
        phone_enc bytea NOT NULL,
        phone_region text NOT NULL,
        phone_kind text NOT NULL,
        name_enc bytea,
        email_enc bytea,
        consent_marketing integer NOT NULL,
        consent_recording integer NOT NULL,
        clause_version text NOT NULL,
        status text NOT NULL CHECK (status IN ('queued', 'calling', 'done')),
        progress text,
        outcome text,
        cause text,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at double precision,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        closed_at double precision,
        subject_id text,
        scheduled_for double precision,
        clause_sha256 text,
        clause_language text,
        notice_version text,
        consent_at double precision,
        origin text
    );
    CREATE INDEX leads_widget_created ON leads(widget_id, created_at);
    CREATE INDEX leads_queued ON leads(next_attempt_at) WHERE status = 'queued';
    CREATE INDEX leads_day_subject ON leads((floor(created_at / 86400)::integer), subject_id);
    CREATE INDEX leads_scheduled ON leads(widget_id, scheduled_for)
        WHERE scheduled_for IS NOT NULL;
    CREATE INDEX leads_created ON leads(created_at);
    CREATE INDEX leads_outcomes ON leads(status, outcome);
    CREATE TABLE attempts (
        id text PRIMARY KEY,
        lead_id text NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
        number integer NOT NULL,
        status text NOT NULL CHECK (status IN ('active', 'done')),
        started_at double precision NOT NULL,
        ended_at double precision,
        outcome text,
        q850 integer,
        cause text,
        agent text,
        agent_ring_s double precision,
        visitor_ring_s double precision,
        talk_s double precision,
        connected integer NOT NULL DEFAULT 0,
        notice_played integer NOT NULL DEFAULT 0 CHECK (notice_played IN (0, 1)),
        acceptances text,
        engine text
    );
    CREATE INDEX attempts_lead ON attempts(lead_id);
    CREATE INDEX attempts_active ON attempts(started_at) WHERE status = 'active';
    CREATE INDEX attempts_agent_ended ON attempts(agent, ended_at) WHERE agent IS NOT NULL;
    CREATE TABLE recordings (
        id text PRIMARY KEY,
        lead_id text NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
        attempt_id text NOT NULL REFERENCES attempts(id) ON DELETE CASCADE,
        route text NOT NULL,
        key_id text NOT NULL,
        status text NOT NULL
            CHECK (status IN ('recording', 'complete', 'incomplete', 'failed', 'deleted')),
        started_at double precision NOT NULL,
        ended_at double precision,
        duration_s double precision,
        bytes integer,
        segments integer,
        sha256 text,
        problem text,
        deleted_at double precision,
        sample_rate integer NOT NULL DEFAULT 16000 CHECK (sample_rate > 0)
    );
    CREATE INDEX recordings_lead ON recordings(lead_id);
    CREATE INDEX recordings_attempt ON recordings(attempt_id);
    CREATE INDEX recordings_live_started ON recordings(started_at)
        WHERE status NOT IN ('deleted', 'recording');
    CREATE INDEX recordings_in_progress ON recordings(started_at) WHERE status = 'recording';
    CREATE TABLE lead_tombstones (
        id text PRIMARY KEY,
        widget_id text NOT NULL,
        created_at double precision NOT NULL,
        closed_at double precision,
        outcome text,
        attempts integer NOT NULL,
        consent_marketing integer NOT NULL,
        consent_recording integer NOT NULL,
        clause_version text NOT NULL,
        purged_at double precision NOT NULL,
        reason text NOT NULL,
        clause_sha256 text,
        clause_language text,
        notice_version text
    );
    CREATE INDEX lead_tombstones_widget ON lead_tombstones(widget_id, created_at);
    CREATE TABLE job_leases (
        name text PRIMARY KEY,
        owner text NOT NULL,
        expires_at double precision NOT NULL
    );
    CREATE TABLE api_tokens (
        name text PRIMARY KEY,
        role text NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent', 'viewer')),
        token_hash text NOT NULL UNIQUE,
        created_at double precision NOT NULL,
        revoked_at double precision
    );
    CREATE TABLE audit_log (
        seq bigint PRIMARY KEY,
        at double precision NOT NULL,
        actor text NOT NULL,
        role text NOT NULL,
        action text NOT NULL,
        target text NOT NULL,
        detail text NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL
    );
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
    CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
    CREATE TABLE audit_meta (
        name text PRIMARY KEY,
        value text NOT NULL
    );
    INSERT INTO audit_meta (name, value)
        VALUES ('store_id', replace(gen_random_uuid()::text, '-', '')), ('keyed_from', '1');
    CREATE TABLE clauses (
        widget_id text NOT NULL REFERENCES widgets(id),
        language text NOT NULL,
        version text NOT NULL,
        text text NOT NULL,
        sha256 text NOT NULL,
        privacy_url text NOT NULL,
        notice_version text,
        notice_text text,
        created_at double precision NOT NULL,
        rowid bigint GENERATED ALWAYS AS IDENTITY,  -- the order they were added (SQLite's rowid)
        PRIMARY KEY (widget_id, language, version)
    );
    CREATE TABLE users (
        username text PRIMARY KEY,
        role text NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent', 'viewer')),
        password_hash text NOT NULL,
        totp_enc bytea,
        totp_last_step integer,
        created_at double precision NOT NULL,
        disabled_at double precision,
        last_login_at double precision
    );
    CREATE TABLE user_sessions (
        token_hash text PRIMARY KEY,
        username text NOT NULL REFERENCES users(username) ON DELETE CASCADE,
        created_at double precision NOT NULL,
        last_seen double precision NOT NULL,
        pending integer NOT NULL DEFAULT 0 CHECK (pending IN (0, 1))
    );
    CREATE INDEX user_sessions_user ON user_sessions(username);
    CREATE TABLE login_throttle (
        key text PRIMARY KEY,
        failures integer NOT NULL,
        first_at double precision NOT NULL,
        locked_until double precision
    );
    CREATE TABLE webhook_endpoints (
        id text PRIMARY KEY,
        url text NOT NULL,
        description text NOT NULL DEFAULT '',
        events text NOT NULL,
        full_numbers integer NOT NULL DEFAULT 0 CHECK (full_numbers IN (0, 1)),
        enabled integer NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        secret_enc bytea NOT NULL,
        previous_secret_enc bytea,
        previous_until double precision,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL
    );
    CREATE TABLE webhook_events (
        id text PRIMARY KEY,
        dedup text NOT NULL UNIQUE,
        type text NOT NULL,
        lead_id text,
        payload text NOT NULL,
        created_at double precision NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id text PRIMARY KEY,
        event_id text NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
        endpoint_id text NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
        status text NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        next_at double precision,
        locked_until double precision,
        last_code integer,
        last_error text,
        last_latency_ms double precision,
        created_at double precision NOT NULL,
        delivered_at double precision,
        UNIQUE (event_id, endpoint_id)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, status);
    CREATE INDEX webhook_deliveries_settled ON webhook_deliveries(status, delivered_at,
        created_at) WHERE status != 'pending';
    CREATE TABLE webhook_attempts (
        delivery_id text NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
        number integer NOT NULL,
        at double precision NOT NULL,
        code integer,
        latency_ms double precision NOT NULL,
        error text,
        PRIMARY KEY (delivery_id, number)
    );
    CREATE TABLE queue_callbacks (
        lead_id text PRIMARY KEY REFERENCES leads(id) ON DELETE CASCADE,
        queue text NOT NULL,
        joined_at double precision NOT NULL,
        evidence text NOT NULL
    );
    -- The per-client limits (storage/limits.py): when a client (the keyed hash of its
    -- address, never the address) last asked for a subject's number; a day at most.
    CREATE TABLE intake_clients (
        client text NOT NULL,
        subject_id text NOT NULL,
        last_at double precision NOT NULL,
        PRIMARY KEY (client, subject_id)
    )
    """,
]

# One key for the advisory lock every write transaction takes (database.py): writes run one
# at a time across every engine, as SQLite's BEGIN IMMEDIATE runs them.
WRITE_LOCK_KEY = 0x63616C6C  # "call"
MIGRATION_LOCK_KEY = 0x6D696772  # "migr": engines starting together migrate once


async def migrate(conn) -> int:
    """Apply what the database lacks, each migration in a transaction with its version; the
    version reached. `conn`: an asyncpg connection."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        version = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
        for number, script in enumerate(PG_MIGRATIONS[version:], start=version + 1):
            await conn.execute(script)  # (a script of several statements: no parameters)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
    return len(PG_MIGRATIONS)


async def schema_version(conn) -> int:
    return await conn.fetchval("SELECT max(version) FROM schema_version") or 0
