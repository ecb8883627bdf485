"""Moving an installation from SQLite to PostgreSQL: every row of the SQLite store copied into
an empty PostgreSQL database in one transaction, counted on both sides (`callengine
move-store`, docs/scale-out.md). The keystore is not copied: it stays the same file, and the
copied rows stay encrypted under the same subject keys. The audit chain keeps its identity
(audit_meta is copied too), so its anchor outside the store still verifies."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg

from callengine.errors import Conflict, InvalidInput
from callengine.storage.pg import schema
from callengine.storage.schema import MIGRATIONS
from callengine.storage.store import Store

# In the order their foreign keys need. Not copied: job_leases (leases of running processes,
# none while nothing runs) and the intake journal's counters (rebuilt from the leads).
TABLES = ("agents", "agent_groups", "group_members", "group_rotation", "widgets", "leads",
          "attempts", "recordings", "lead_tombstones", "queue_callbacks", "api_tokens",
          "audit_meta", "audit_log", "clauses", "users", "user_sessions", "login_throttle",
          "webhook_endpoints", "webhook_events", "webhook_deliveries", "webhook_attempts")


async def copy_to_postgresql(database: Path, data_key: bytes, *, keystore: Path,
                             audit_dir: Path, url: str, password: str = "") -> dict[str, int]:
    """Copy the SQLite store at `database` into the empty PostgreSQL database at `url`;
    the rows copied, by table. Conflict if an engine still holds its lease on the SQLite
    store or the PostgreSQL database holds data already; nothing is written then."""
    if len(MIGRATIONS) != schema.SQLITE_VERSION:
        raise RuntimeError("the PostgreSQL schema lags the SQLite one: a migration is missing")
    if not database.exists():
        raise InvalidInput("store.database", f"no SQLite store at {database}")
    async with Store.open(database, data_key, keystore=keystore, audit_dir=audit_dir) as store:
        running = await store._db.execute_fetchall(  # leads journaled by now are moved in
            "SELECT name FROM job_leases WHERE name LIKE 'engine:%' AND expires_at > ?",
            (time.time(),))
        if running:
            raise Conflict("stop every engine first: " + ", ".join(row[0] for row in running)
                           + " still holds its lease")
        conn = await asyncpg.connect(url, password=password or None)
        try:
            await schema.migrate(conn)
            async with conn.transaction():
                await conn.execute("LOCK TABLE widgets, leads, audit_log IN EXCLUSIVE MODE")
                held = await conn.fetchval("SELECT (SELECT count(*) FROM widgets)"
                                           " + (SELECT count(*) FROM leads)"
                                           " + (SELECT count(*) FROM audit_log)")
                if held:
                    raise Conflict("the PostgreSQL database holds data already: give an empty"
                                   " one")
                await conn.execute("DELETE FROM audit_meta")  # the SQLite store's identity
                copied = {}
                for table in TABLES:
                    columns = [row[1] for row in await store._db.execute_fetchall(
                        f"SELECT * FROM pragma_table_info('{table}')")]
                    rows = [tuple(row) for row in await store._db.execute_fetchall(
                        f"SELECT {', '.join(columns)} FROM {table}")]
                    if rows:
                        await conn.copy_records_to_table(table, records=rows, columns=columns)
                    there = await conn.fetchval(f"SELECT count(*) FROM {table}")
                    if there != len(rows):
                        raise RuntimeError(f"{table}: {len(rows)} rows read, {there} copied")
                    copied[table] = len(rows)
        finally:
            await conn.close()
    return copied
