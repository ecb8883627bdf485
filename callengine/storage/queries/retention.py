"""Store's retention side: the purge's lease, what has expired, and the purge of leads (the
batches of a long purge run on their own connection: storage/purge.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from callengine.storage import outbox
from callengine.storage.base import StoreBase
from callengine.storage.purge import (
    EXPIRED_LEADS, EXPIRED_RECORDINGS, PurgeBatches, live_recordings_of, purge_statements,
)
from callengine.storage.sql import chunks


class RetentionQueries(StoreBase):
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

    async def renew_lease(self, name: str, owner: str, now: float, ttl_s: float) -> bool:
        """Extend the lease this owner holds (expired or not); False if it is another's now,
        or gone: it was taken over."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE job_leases SET expires_at = ? WHERE name = ? AND owner = ?",
                (now + ttl_s, name, owner))
            return cursor.rowcount == 1

    async def engines_to_take_over(self, me: str, now: float) -> list[str]:
        """Engines other than `me` with attempts still open and no live lease: stopped or cut
        off for longer than their lease (NULL engines are whoever restarts first's)."""
        return [row[0] for row in await self._db.execute_fetchall(
            "SELECT DISTINCT a.engine FROM attempts a WHERE a.status = 'active'"
            " AND a.engine IS NOT NULL AND a.engine != ? AND NOT EXISTS (SELECT 1 FROM"
            " job_leases j WHERE j.name = 'engine:' || a.engine AND j.expires_at > ?)"
            " ORDER BY a.engine", (me, now))]

    async def release_lease(self, name: str, owner: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM job_leases WHERE name = ? AND owner = ?", (name, owner))

    async def count_expired_recordings(self, widget_id: str, cutoff: float) -> int:
        return (await self._fetch_one(
            f"SELECT COUNT(*) {EXPIRED_RECORDINGS}", (cutoff, widget_id)
        ))[0]

    async def count_expired_leads(self, widget_id: str, cutoff: float) -> int:
        return (await self._fetch_one(
            f"SELECT COUNT(*) {EXPIRED_LEADS}", (widget_id, cutoff)
        ))[0]

    async def live_recording_ids(self, lead_ids: list[str]) -> list[str]:
        found: list[str] = []
        for chunk in chunks(lead_ids):
            found += [row[0] for row in await self._fetch(live_recordings_of(len(chunk)), chunk)]
        return found

    async def live_recording_id_set(self) -> set[str]:
        return {row[0] for row in await self._fetch(
            "SELECT id FROM recordings WHERE status != 'deleted'")}

    async def purge_leads(self, lead_ids: list[str], now: float, reason: str) -> int:
        """Tombstone and delete the leads (attempts and recording rows go with them), in one
        transaction: a crash leaves every lead of the batch either whole or purged. Only
        leads in the store: the intake's mover calls this too (for a lead erased while it was
        journaled), so it must not wait for the mover."""
        purged = 0
        async with self._transaction() as db:
            for chunk in chunks(lead_ids):
                tombstone, delete = purge_statements(len(chunk))
                await db.execute(tombstone, (now, reason, *chunk))
                cursor = await db.execute(delete, chunk)
                purged += cursor.rowcount
            if purged:  # webhooks: the CRM drops (erasure: erases) its copy too
                await outbox.emit(db, *outbox.purged(reason, lead_ids, now))
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
        return (await self._fetch_one(
            f"SELECT COUNT(*) FROM lead_tombstones {where}", params
        ))[0]
