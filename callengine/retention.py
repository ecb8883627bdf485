"""Retention: purge what each widget's retention periods say has expired, on a schedule.

Closed leads past `lead_retention_days` are deleted with their attempts, consents and
recordings (crypto-shredded: their keys first, then the rows and the files), each leaving a
tombstone with no personal data; then the recordings past `recording_retention_days` whose
leads stay are crypto-shredded too. The work goes in batches, each one
atomic, so a purge can be interrupted anywhere and the next one simply carries on; a lease in
the store keeps two purges (the engine's schedule, an operator's `callengine purge`) from
running at once. Time comes in as an argument: tests use their own clock.

Made to run beside live intake (bench/bench_purge.py measures both): the engine runs each purge
in a child process at idle CPU priority (PurgeProcess, callengine/purge_child.py), whose writes
take turns with the engine's on its write lock; batches are sized to hold SQLite's single
writer about HOLD_TARGET_S, on the purge's own connection (storage.PurgeBatches, which also
checkpoints beside the batches); files are removed by worker threads while the database work
goes on, and whatever an interrupted purge left (files whose keys and rows are gone) is swept
by the next one. An operator's `callengine purge` runs Purger in its own process the same way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from callengine.access import Principal, Role
from callengine.config import OutboxRetention
from callengine.errors import ErasureIncomplete
from callengine.recordings import RecordingVault
from callengine.model import Widget
from callengine.storage import PurgeBatchStorage, Storage

log = logging.getLogger(__name__)

DAY = 86400.0
LEASE = "purge"
LEASE_TTL_S = 300.0  # a purge that died frees the lease after this
LEASE_RENEW_S = 60.0  # renewed this often while a purge runs (a write: not every batch)
# Each write transaction of the purge holds SQLite's single writer (a turn on the engine's
# write lock); the engine's writes wait behind one at most, and new leads not at all (they go
# to the intake journal). Batches are sized to hold it about this long. bench/bench_purge.py,
# 1M leads in a purge process: 5 ms took 50.7-72.3 s over about 10,000 turns and wrote
# 6.7-7.6 GB; 10 ms 42.2-50.9 s, 5.3-5.5 GB; 20 ms 42.8-53.5 s, 4.7-4.9 GB; intake alike.
HOLD_TARGET_S = 0.020
FIRST_BATCH, MIN_BATCH, MAX_BATCH = 100, 10, 2000
# Expired leads read ahead at once: their recordings' keys go in one keystore transaction (a
# commit, so an fsync, each), then the leads in batches sized to the hold.
LEAD_CHUNK = 2000
FILES_PER_CALL = 250  # files FileRemoval hands remove_files at most at once
RETENTION = Principal("retention", Role.ADMIN)  # who the audit log says purged
# The purge's worker threads run at this nice value (in the engine's purge process, which runs
# at SCHED_IDLE, they are lower still), so that when the purge's SQLite, checkpoint and file
# threads keep both cores busy, intake and calls still get the CPU first.
BACKGROUND_NICE = 10


def background_thread() -> None:
    """Lower the calling thread's CPU priority (Linux: the nice value is per thread)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid),
                                                 BACKGROUND_NICE))
    except OSError:
        pass  # not permitted or not Linux: run at normal priority


def lease_owner(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


@dataclass
class PurgeReport:
    recordings: int = 0  # shredded for being past their own retention
    leads: int = 0  # purged (tombstoned)
    lead_recordings: int = 0  # shredded because their lead was purged
    orphan_files: int = 0  # left by an interrupted purge (keys already gone), removed now
    file_problem: str | None = None  # files of shredded recordings that could not be removed
    scrub_problem: str | None = None  # ErasureIncomplete: the logs or keys still to scrub
    dry_run: bool = False
    skipped: str | None = None  # why nothing was done (another purge holds the lease)
    webhook_deliveries: int = 0  # settled deliveries pruned from the webhooks' outbox
    by_widget: dict[str, tuple[int, int]] = field(default_factory=dict)  # leads, recordings

    def summary(self) -> str:
        if self.skipped:
            return f"purge skipped: {self.skipped}"
        verb = "would purge" if self.dry_run else "purged"
        text = (f"{verb} {self.leads} lead(s) and {self.recordings + self.lead_recordings}"
                f" recording(s)")
        if self.orphan_files:
            text += f"; removed {self.orphan_files} file(s) an interrupted purge left"
        if self.webhook_deliveries:
            text += f"; pruned {self.webhook_deliveries} settled webhook delivery(ies)"
        if self.file_problem:
            text += f"; {self.file_problem}"
        return text


Progress = Callable[[str, int, int], None]  # (what, done so far, total)


class BatchSizer:
    """Batch sizes that keep each transaction near HOLD_TARGET_S: the work per row varies with
    the machine, the page cache and the rows' neighbours, so the size follows the last holds."""

    def __init__(self) -> None:
        self.size = FIRST_BATCH

    def held(self, rows: int, seconds: float) -> None:
        if rows < self.size or seconds <= 0:
            return  # a short last batch says nothing about the rate
        ideal = rows * HOLD_TARGET_S / seconds
        self.size = int(min(MAX_BATCH, max(MIN_BATCH, (self.size + ideal) / 2)))


class FileRemoval:
    """Removes shredded recordings' files in a worker thread while the purge goes on with the
    database: unlinking is the slower half of the work (kernel CPU, ~0.2 ms a file measured)
    and the machine has a second core. Batches are queued only after their keys are destroyed;
    a purge stopped with files still queued leaves them keyless, for the next purge's sweep."""

    def __init__(self, vault: RecordingVault):
        self._vault = vault
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="purge-files",
                                          initializer=background_thread)
        self._batches: deque[list[str]] = deque()
        self._worker: asyncio.Task[None] | None = None

    def queue(self, recording_ids: list[str]) -> None:
        if not recording_ids:
            return
        self._batches.append(recording_ids)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="purge-file-removal")

    async def _drain(self) -> None:
        while self._batches:
            # Queued batches go together, up to FILES_PER_CALL: remove_files syncs once a call.
            files = self._batches.popleft()
            while self._batches and len(files) + len(self._batches[0]) <= FILES_PER_CALL:
                files = files + self._batches.popleft()
            await asyncio.get_running_loop().run_in_executor(
                self._thread, self._vault.remove_files, files)

    async def wait(self) -> None:
        """Until every queued file is gone; raises what removing them raised."""
        if self._worker is not None:
            await self._worker

    def stop(self) -> None:
        """The purge is ending early: drop the queue (a batch already in its thread finishes)."""
        self._batches.clear()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._thread.shutdown(wait=False)


class Purger:
    def __init__(self, store: Storage, vault: RecordingVault, *, owner: str | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 outbox: OutboxRetention = OutboxRetention()):
        self._store = store
        self._vault = vault
        self._outbox = outbox
        self._owner = owner or lease_owner(os.getpid())
        self._clock = clock  # for transaction holds and lease renewals, not for retention
        self._renewed_at = self._started_at = 0.0

    async def run(self, now: float, *, dry_run: bool = False,
                  progress: Progress | None = None) -> PurgeReport:
        report = PurgeReport(dry_run=dry_run)
        widgets = await self._store.list_widgets()
        totals = {
            w.id: (
                await self._store.count_expired_leads(
                    w.id, now - w.settings.lead_retention_days * DAY),
                await self._store.count_expired_recordings(
                    w.id, now - w.settings.recording_retention_days * DAY),
            )
            for w in widgets
        }
        if dry_run:
            for widget_id, (leads, recordings) in totals.items():
                report.leads += leads
                report.recordings += recordings
                report.by_widget[widget_id] = (leads, recordings)
            return report
        if not await self._store.acquire_lease(LEASE, self._owner, now, LEASE_TTL_S):
            report.skipped = "another purge is running"
            return report
        self._renewed_at = self._started_at = self._clock()
        incomplete: ErasureIncomplete | None = None
        try:
            try:  # what an earlier erasure or purge could not scrub, first
                await self._store.scrub_pending()
            except ErasureIncomplete:
                pass  # this purge's own scrub, at its end, says so
            async with self._store.purge_batches(background_thread) as batches:
                subjects = await self._purge(batches, widgets, totals, now, report, progress)
            report.webhook_deliveries = await self._prune_outbox(now)
            # Gone only when the purge is true: its subjects' keys (those no lead names any
            # more) and the logs' old page images, checked.
            try:
                await self._store.forget_unused_subjects(subjects)
                await self._store.forget_deleted_pages()
            except ErasureIncomplete as exc:
                incomplete = exc
                report.scrub_problem = str(exc)
        finally:
            await self._store.release_lease(LEASE, self._owner)
        if report.webhook_deliveries:
            log.info("retention: pruned %d settled webhook deliveries",
                     report.webhook_deliveries)
        if report.leads or report.recordings or report.lead_recordings:
            log.info("retention: %s", report.summary())
            await self._store.audit(
                RETENTION, "retention.purge", f"leads:{report.leads}",
                f"recordings:{report.recordings + report.lead_recordings}"
                + ("; scrub pending (retried)" if incomplete else ""), now)
        if incomplete is not None:
            log.error("retention: %s", incomplete)
            raise incomplete
        return report

    async def _purge(self, batches: PurgeBatchStorage, widgets: list[Widget],
                     totals: dict[str, tuple[int, int]], now: float, report: PurgeReport,
                     progress: Progress | None) -> set[str]:
        """Returns the data subjects of the purged leads."""
        subjects: set[str] = set()
        total_leads = sum(n for n, _ in totals.values())
        total_recordings = 0  # counted after the leads, which take their recordings along
        files = FileRemoval(self._vault)
        try:
            # Leads first: their recordings go with them (keys first, then rows and files), so
            # a recording whose lead expires too is never marked deleted only to be deleted.
            sizer = BatchSizer()
            for widget in widgets:
                cutoff = now - widget.settings.lead_retention_days * DAY
                while True:
                    await self._renew(now)
                    # Read ahead (no write lock), shred the chunk's recordings' keys in one
                    # keystore transaction, then delete the leads in batches sized to the hold.
                    lead_ids, recording_ids = await batches.expired_leads(
                        widget.id, cutoff, LEAD_CHUNK)
                    if not lead_ids:
                        break
                    subjects |= await batches.subjects_of(lead_ids)
                    if recording_ids:  # keys go before the rows naming them
                        await self._vault.destroy_keys(recording_ids, final=False)
                        files.queue(recording_ids)
                        report.lead_recordings += len(recording_ids)
                    while lead_ids:
                        batch, lead_ids = lead_ids[:sizer.size], lead_ids[sizer.size:]
                        began = self._clock()
                        report.leads += await batches.purge_leads(batch, now, "retention")
                        sizer.held(len(batch), self._clock() - began)
                        await self._between_batches(batches)
                        if progress:
                            progress("leads", report.leads, total_leads)
                report.by_widget[widget.id] = totals[widget.id]
            if progress:
                total_recordings = sum([
                    await self._store.count_expired_recordings(
                        w.id, now - w.settings.recording_retention_days * DAY)
                    for w in widgets])
            sizer = BatchSizer()
            for widget in widgets:
                cutoff = now - widget.settings.recording_retention_days * DAY
                while ids := await batches.expired_recordings(widget.id, cutoff, sizer.size):
                    await self._renew(now)
                    # the shred, before the rows change
                    await self._vault.destroy_keys(ids, final=False)
                    began = self._clock()
                    await batches.mark_recordings_deleted(ids, now)
                    sizer.held(len(ids), self._clock() - began)
                    files.queue(ids)
                    await self._between_batches(batches)
                    report.recordings += len(ids)
                    if progress:
                        progress("recordings", report.recordings, total_recordings)
            try:
                await files.wait()
                orphans = await self._vault.orphan_files(
                    await self._store.live_recording_id_set())
                await asyncio.to_thread(self._vault.remove_files, orphans)
                report.orphan_files = len(orphans)
            except OSError as exc:
                # Keys and rows are gone already, so nothing is readable; the files wait for
                # the next purge's sweep. The purge itself still counts (and is audited).
                report.file_problem = f"removing shredded files failed: {exc}"
                log.error("retention: %s", report.file_problem)
        finally:
            files.stop()
        # The keystore's log, with the shredded keys' old pages, is truncated (checked, or
        # retried through the scrub marker) by run()'s forget_deleted_pages.
        return subjects

    async def _prune_outbox(self, now: float) -> int:
        """The webhooks' settled deliveries past their age, in short batches (dead ones are
        kept longer: someone may still replay them)."""
        pruned = 0
        delivered_before = now - self._outbox.delivered_days * DAY
        dead_before = now - self._outbox.dead_days * DAY
        while batch := await self._store.prune_outbox(delivered_before, dead_before):
            pruned += batch
            await self._renew(now)
            await asyncio.sleep(0)  # let waiting requests in
        return pruned

    async def _between_batches(self, batches: PurgeBatchStorage) -> None:
        batches.after_batch()
        await asyncio.sleep(0)  # let waiting requests in

    async def _renew(self, now: float) -> None:
        moment = self._clock()
        if moment - self._renewed_at < LEASE_RENEW_S:
            return
        lease_now = now + (moment - self._started_at)  # `now` is the purge's cutoff time
        if not await self._store.acquire_lease(LEASE, self._owner, lease_now, LEASE_TTL_S):
            raise RuntimeError("the purge lease was taken over; stopping this purge")
        self._renewed_at = moment


# A turn normally lasts about HOLD_TARGET_S (bench/bench_purge.py: p99 40 ms at 20 ms holds).
TURN_LIMIT_S = 2.0


@dataclass(frozen=True)
class PurgeTarget:
    """What a purge process opens: the store, the keystore, the recordings."""
    database: Path
    keystore: Path
    recordings_dir: Path
    data_key: bytes
    audit_dir: Path | None = None  # the audit key and anchor (default: beside the keystore)
    outbox: OutboxRetention = OutboxRetention()
    url: str | None = None  # a PostgreSQL store (store.url) instead of `database`
    password: str = field(default="", repr=False)


class PurgeProcess:
    """Runs `Purger.run` in a child process (callengine.purge_child) and gives it turns on the
    engine's write lock: each `turn` line from the child is answered `go` once the lock is
    taken, and the lock is released at its `done`, or when the child ends. Cancelling `run`
    kills the child and frees its lease; the purge, atomic batch by batch, carries on next
    time. So does a child that keeps a turn past TURN_LIMIT_S: it runs at idle CPU priority,
    and on a host whose cores are all busy it could otherwise hold the engine's writes (calls
    being set up) for as long as it gets no CPU."""

    def __init__(self, target: PurgeTarget, store: Storage):
        self._target = target
        self._store = store  # the engine's: its write lock, and the killed child's lease
        # the last run's turns: how long the child waited for each, and held it (seconds)
        self.waits: list[float] = []
        self.held: list[float] = []

    async def run(self, now: float, *, progress: Progress | None = None) -> PurgeReport:
        loop = asyncio.get_running_loop()
        overdue: asyncio.TimerHandle | None = None
        killed_in_turn = False

        def kill_in_turn() -> None:
            nonlocal killed_in_turn
            killed_in_turn = True
            log.warning("retention: the purge process held the store's write lock over %g s;"
                        " killed (the next purge carries on)", TURN_LIMIT_S)
            try:
                child.kill()
            except ProcessLookupError:
                pass  # it ended meanwhile

        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callengine.purge_child",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        assert child.stdin is not None and child.stdout is not None
        held = False
        report: PurgeReport | None = None
        incomplete: ErasureIncomplete | None = None
        self.waits, self.held = [], []
        asked = granted = 0.0
        try:
            child.stdin.write(json.dumps({
                "database": str(self._target.database), "keystore": str(self._target.keystore),
                "recordings_dir": str(self._target.recordings_dir), "now": now,
                "data_key": base64.b64encode(self._target.data_key).decode(),
                "audit_dir": str(self._target.audit_dir or self._target.keystore.parent),
                "outbox": [self._target.outbox.delivered_days, self._target.outbox.dead_days],
                "url": self._target.url, "password": self._target.password,
            }).encode() + b"\n")
            await child.stdin.drain()
            while line := await child.stdout.readline():
                kind, _, rest = line.decode().rstrip("\n").partition(" ")
                if kind == "turn":
                    asked = time.monotonic()
                    await self._store.write_lock.acquire()
                    held = True
                    granted = time.monotonic()
                    self.waits.append(granted - asked)
                    overdue = loop.call_later(TURN_LIMIT_S, kill_in_turn)
                    child.stdin.write(b"go\n")
                    await child.stdin.drain()
                elif kind == "done" and held:
                    held = False
                    self._store.write_lock.release()
                    self.held.append(time.monotonic() - granted)
                    if overdue is not None:
                        overdue.cancel()
                elif kind == "progress" and progress is not None:
                    what, done, total = rest.split(" ")
                    progress(what, int(done), int(total))
                elif kind == "incomplete":
                    incomplete = ErasureIncomplete(rest)
                elif kind == "report":
                    fields = json.loads(rest)
                    fields["by_widget"] = {k: tuple(v) for k, v in fields["by_widget"].items()}
                    report = PurgeReport(**fields)
            await child.wait()
        finally:
            if overdue is not None:
                overdue.cancel()
            if held:
                self._store.write_lock.release()
            if child.returncode is None:
                try:
                    child.kill()
                except ProcessLookupError:
                    pass  # it just ended
                await child.wait()
            if child.returncode != 0:  # killed, or died: its lease is free for the next purge
                await self._store.release_lease(LEASE, lease_owner(child.pid))
        if killed_in_turn:
            raise RuntimeError(f"the purge process held the store's write lock over"
                               f" {TURN_LIMIT_S:g} s and was killed")
        if incomplete is not None:
            raise incomplete
        if child.returncode != 0 or report is None:
            raise RuntimeError(f"the purge process failed (exit status {child.returncode});"
                               " its log says why")
        return report


class PurgeSchedule:
    """The running schedule. `stop` ends it before the store closes: no new run starts, and a
    running one is cancelled and waited for, so that its cleanup (the child killed and waited
    for, its lease freed, in PurgeProcess.run) is done while the store is still open."""

    def __init__(self, scheduler: AsyncIOScheduler):
        self.scheduler = scheduler
        self.running: set[asyncio.Task] = set()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in self.running:
            task.cancel()
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)


def start_schedule(purger: Purger | PurgeProcess, *, interval_s: float = 3600.0,
                   clock: Callable[[], float] = time.time,
                   on_run: Callable[[str], None] = lambda outcome: None,
                   on_pruned: Callable[[int], None] = lambda count: None) -> PurgeSchedule:
    """Purge at start and then every interval; one at a time in this process (max_instances),
    and across processes thanks to the lease. `on_run` hears each run's outcome: "ok",
    "skipped" (another purge held the lease) or "failed" (the metrics' purge_run); `on_pruned`
    how many settled webhook deliveries it pruned."""
    schedule = PurgeSchedule(AsyncIOScheduler())

    async def job() -> None:
        task = asyncio.current_task()
        assert task is not None
        schedule.running.add(task)
        try:
            report = await purger.run(clock())
        except Exception:
            log.exception("retention purge failed; the next run carries on")
            on_run("failed")
        else:
            on_run("skipped" if report.skipped else "ok")
            on_pruned(report.webhook_deliveries)
        finally:
            schedule.running.discard(task)

    schedule.scheduler.add_job(job, "interval", seconds=interval_s, next_run_time=_now_dt(),
                               max_instances=1, coalesce=True, id="retention-purge")
    schedule.scheduler.start()
    return schedule


def _now_dt():
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
