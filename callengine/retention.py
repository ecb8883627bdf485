"""Retention: purge what each widget's retention periods say has expired, on a schedule.

Recordings past `recording_retention_days` are crypto-shredded (their keys first, then the
files); closed leads past `lead_retention_days` are deleted with their attempts, consents and
recordings, each leaving a tombstone with no personal data. The work goes in batches, each one
atomic, so a purge can be interrupted anywhere and the next one simply carries on; a lease in
the store keeps two purges (the engine's schedule, an operator's `callengine purge`) from
running at once. Time comes in as an argument: tests use their own clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from callengine.access import Principal, Role
from callengine.recordings import RecordingVault
from callengine.store import Store

log = logging.getLogger(__name__)

DAY = 86400.0
LEASE = "purge"
LEASE_TTL_S = 300.0  # renewed every batch; a purge that died frees the lease after this
# Small batches: each is one short write transaction, so intake requests wait behind at most one
# of them (bench/bench_purge.py measured 5,000-lead batches holding the database for seconds).
RECORDING_BATCH = 500
LEAD_BATCH = 500
RETENTION = Principal("retention", Role.ADMIN)  # who the audit log says purged


@dataclass
class PurgeReport:
    recordings: int = 0  # shredded for being past their own retention
    leads: int = 0  # purged (tombstoned)
    lead_recordings: int = 0  # shredded because their lead was purged
    dry_run: bool = False
    skipped: str | None = None  # why nothing was done (another purge holds the lease)
    by_widget: dict[str, tuple[int, int]] = field(default_factory=dict)  # leads, recordings

    def summary(self) -> str:
        if self.skipped:
            return f"purge skipped: {self.skipped}"
        verb = "would purge" if self.dry_run else "purged"
        return (f"{verb} {self.leads} lead(s) and {self.recordings + self.lead_recordings}"
                f" recording(s)")


Progress = Callable[[str, int, int], None]  # (what, done so far, total)


class Purger:
    def __init__(self, store: Store, vault: RecordingVault, *, owner: str | None = None):
        self._store = store
        self._vault = vault
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}"

    async def run(self, now: float, *, dry_run: bool = False,
                  progress: Progress | None = None) -> PurgeReport:
        report = PurgeReport(dry_run=dry_run)
        widgets = await self._store.list_widgets()
        if dry_run:
            for widget in widgets:
                settings = widget.settings
                leads = await self._store.count_expired_leads(
                    widget.id, now - settings.lead_retention_days * DAY)
                recordings = await self._store.count_expired_recordings(
                    widget.id, now - settings.recording_retention_days * DAY)
                report.leads += leads
                report.recordings += recordings
                report.by_widget[widget.id] = (leads, recordings)
            return report
        if not await self._store.acquire_lease(LEASE, self._owner, now, LEASE_TTL_S):
            report.skipped = "another purge is running"
            return report
        try:
            totals = {
                w.id: (
                    await self._store.count_expired_leads(
                        w.id, now - w.settings.lead_retention_days * DAY),
                    await self._store.count_expired_recordings(
                        w.id, now - w.settings.recording_retention_days * DAY),
                )
                for w in widgets
            }
            total_recordings = sum(r for _, r in totals.values())
            total_leads = sum(n for n, _ in totals.values())
            for widget in widgets:
                cutoff = now - widget.settings.recording_retention_days * DAY
                while batch := await self._store.expired_recordings(
                    widget.id, cutoff, RECORDING_BATCH
                ):
                    await self._renew(now)
                    ids = [recording_id for recording_id, _ in batch]
                    await self._vault.shred(ids)
                    await self._store.mark_recordings_deleted(ids, now)
                    await self._between_batches()
                    report.recordings += len(ids)
                    if progress:
                        progress("recordings", report.recordings, total_recordings)
            for widget in widgets:
                cutoff = now - widget.settings.lead_retention_days * DAY
                while lead_ids := await self._store.expired_leads(widget.id, cutoff, LEAD_BATCH):
                    await self._renew(now)
                    recording_ids = await self._store.live_recording_ids(lead_ids)
                    await self._vault.shred(recording_ids)  # keys go before the rows naming them
                    report.lead_recordings += len(recording_ids)
                    report.leads += await self._store.purge_leads(
                        lead_ids, now, reason="retention")
                    await self._between_batches()
                    if progress:
                        progress("leads", report.leads, total_leads)
                report.by_widget[widget.id] = totals[widget.id]
        finally:
            await self._store.release_lease(LEASE, self._owner)
        if report.leads or report.recordings or report.lead_recordings:
            log.info("retention: %s", report.summary())
            await self._store.audit(
                RETENTION, "retention.purge", f"leads:{report.leads}",
                f"recordings:{report.recordings + report.lead_recordings}", now)
        return report

    async def _between_batches(self) -> None:
        await self._store.checkpoint()
        await asyncio.sleep(0)  # let waiting requests in

    async def _renew(self, now: float) -> None:
        if not await self._store.acquire_lease(LEASE, self._owner, now, LEASE_TTL_S):
            raise RuntimeError("the purge lease was taken over; stopping this purge")


def start_schedule(purger: Purger, *, interval_s: float = 3600.0,
                   clock: Callable[[], float] = time.time) -> AsyncIOScheduler:
    """Purge at start and then every interval; one at a time in this process (max_instances),
    and across processes thanks to the lease."""
    scheduler = AsyncIOScheduler()

    async def job() -> None:
        try:
            await purger.run(clock())
        except Exception:
            log.exception("retention purge failed; the next run carries on")

    scheduler.add_job(job, "interval", seconds=interval_s, next_run_time=_now_dt(),
                      max_instances=1, coalesce=True, id="retention-purge")
    scheduler.start()
    return scheduler


def _now_dt():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
