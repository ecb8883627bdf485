"""Retention purges with a controllable clock: what expires goes (recordings crypto-shredded,
leads tombstoned), what doesn't stays; dry runs change nothing; purges never overlap and can be
interrupted anywhere."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from callengine import cli, crypto, retention
from callengine.flow import Outcome, Result, Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.recordings import RecordingVault
from callengine.retention import DAY, Purger, start_schedule
from callengine.errors import RateLimited
from callengine.storage import KeyStore, PurgeBatches, Store
from callengine.storage.pg.store import PgPurgeBatches
from tests.support import postgres
from tests.support.engine import DATA_KEY, DATA_KEY_B64
from tests.support.recordings import seed_recording

NOW = 1_800_000_000.0


async def add_lead(store, widget, *, age_days: float, closed: bool, phone: str,
                   recording_age_days: float | None = None, public_key: bytes | None = None,
                   vault: RecordingVault | None = None) -> tuple[str, str | None]:
    created = NOW - age_days * DAY
    lead = await store.create_lead(
        widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name="Ann",
        email="ann@example.com", consent=Consent(True, True, "v7"), now=created)
    attempt = await store.start_attempt(lead.id, created)
    recording_id = None
    if recording_age_days is not None:
        recording_id = await seed_recording(store, vault, attempt, public_key,
                                            b"\x01\x02" * 40000,
                                            started_at=NOW - recording_age_days * DAY)
    if closed:
        await store.finish_attempt(attempt, Result(Outcome.CONNECTED, talk_s=30.0, connected=True),
                                   created + 60, retry_at=None)
    return lead.id, recording_id


@pytest.fixture
async def env(tmp_path):
    _, public = crypto.generate_recipient_keypair()
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        vault = RecordingVault(recordings, keystore)
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await store.add_widget("shop", "Shop", widget_settings_from_input({
            "group": "sales", "allowed_regions": ["PL"], "lead_retention_days": 30,
            "recording_retention_days": 7, "max_leads_per_number_per_day": 100}), NOW - 400 * DAY)
        leads = {
            "old-closed": await add_lead(store, widget, age_days=40, closed=True,
                                         phone="+48601000001", recording_age_days=40,
                                         public_key=public, vault=vault),
            "old-open": await add_lead(store, widget, age_days=40, closed=False,
                                       phone="+48601000002"),
            "young-old-recording": await add_lead(store, widget, age_days=10, closed=True,
                                                  phone="+48601000003", recording_age_days=10,
                                                  public_key=public, vault=vault),
            "young": await add_lead(store, widget, age_days=2, closed=True, phone="+48601000004",
                                    recording_age_days=2, public_key=public,
                                    vault=vault),
        }
        yield store, vault, leads


async def test_dry_run_says_what_would_go_and_changes_nothing(env):
    store, vault, leads = env
    recordings = vault.directory
    report = await Purger(store, vault).run(NOW, dry_run=True)
    assert (report.leads, report.recordings) == (1, 2)
    assert len(list(recordings.iterdir())) == 3
    assert len(await store.list_leads()) == 4
    assert await store.count_tombstones() == 0


async def test_purge_removes_exactly_what_expired(env):
    store, vault, leads = env
    recordings = vault.directory
    report = await Purger(store, vault).run(NOW)
    # "old-closed"'s recording goes with its lead; "young-old-recording"'s on its own
    assert (report.leads, report.recordings, report.lead_recordings) == (1, 1, 1)
    remaining = {lead.id for lead in await store.list_leads()}
    assert remaining == {leads[k][0] for k in ("old-open", "young-old-recording", "young")}
    assert await store.attempts_for(leads["old-closed"][0]) == []
    files = {p.stem for p in recordings.iterdir()}
    assert files == {leads["young"][1]}
    old_recording = await store.get_recording(leads["young-old-recording"][1])
    assert old_recording.status == "deleted"
    # The tombstone keeps the counts and the consent facts, and no personal data.
    assert await store.count_tombstones("shop") == 1
    row, = await store._db.execute_fetchall("SELECT * FROM lead_tombstones")
    assert "601000001" not in repr(tuple(row)) and "Ann" not in repr(tuple(row))
    assert row["outcome"] == "connected"
    # a second purge finds nothing more
    again = await Purger(store, vault).run(NOW)
    assert (again.leads, again.recordings) == (0, 0)


async def test_a_purged_leads_recordings_are_shredded_with_it(env):
    """Recordings kept longer than their leads go with the lead: key, then row, then file."""
    store, vault, leads = env
    _, public = crypto.generate_recipient_keypair()
    widget = await store.add_widget("long", "Long", widget_settings_from_input({
        "group": "sales", "allowed_regions": ["PL"], "lead_retention_days": 30,
        "recording_retention_days": 90, "max_leads_per_number_per_day": 100}), NOW - 400 * DAY)
    lead_id, recording_id = await add_lead(store, widget, age_days=40, closed=True,
                                           phone="+48601000009", recording_age_days=40,
                                           public_key=public, vault=vault)
    report = await Purger(store, vault).run(NOW)
    assert report.by_widget["long"] == (1, 0)
    assert report.lead_recordings == 2  # this one, and the "shop" widget's "old-closed"
    assert not (vault.directory / f"{recording_id}.cerec").exists()
    assert await vault.keystore.get(recording_id) is None
    assert lead_id not in {lead.id for lead in await store.list_leads()}
    assert await store.count_tombstones("long") == 1


async def test_many_files_go_at_once_each_key_overwritten_first(env, monkeypatch):
    """Past a few dozen files remove_files unlinks in several threads: every file goes, each
    only after its wrapped key was overwritten and synced; a file already gone is skipped."""
    _, vault, _ = env
    ids = [f"batch{n:03d}" for n in range(150)]
    for recording_id in ids:
        (vault.directory / f"{recording_id}.cerec").write_bytes(b"\xaa" * 300)
    events: list[str] = []
    real_destroy = crypto.destroy_key
    monkeypatch.setattr(crypto, "destroy_key", lambda path, sync=True: (
        events.append(f"key {path.stem}"), real_destroy(path, sync=sync))[1])
    monkeypatch.setattr("callengine.recordings.os.sync", lambda: events.append(
        f"sync with {sum(p.stem.startswith('batch') for p in vault.directory.iterdir())} files"))
    removed = await asyncio.to_thread(vault.remove_files, ids + ["never-existed"])
    assert removed == 150
    assert not any(p.stem.startswith("batch") for p in vault.directory.iterdir())
    assert len(list(vault.directory.iterdir())) == 3  # the fixture's recordings stay
    assert events == [f"key {rid}" for rid in ids + ["never-existed"]] + ["sync with 150 files"]


def wal_index(db_path) -> tuple[int, int]:
    """(frames in the WAL, frames already folded into the database), read from the WAL-index
    (the -shm file: sqlite.org/walformat.html, native byte order) without checkpointing."""
    import struct
    shm = (db_path.parent / f"{db_path.name}-shm").read_bytes()
    (max_frame,) = struct.unpack_from("=I", shm, 16)
    (backfilled,) = struct.unpack_from("=I", shm, 96)
    return max_frame, backfilled


@pytest.mark.sqlite_only  # SQLite's WAL
async def test_a_purge_leaves_the_wal_folded(env):
    """The purge checkpoints at most once a second beside its batches, and once more as it
    closes: nothing it wrote is left in the WAL for an intake commit to fold."""
    store, _, _ = env
    async with store.purge_batches() as batches:
        lead_ids, recording_ids = await batches.expired_leads("shop", NOW - 30 * DAY, 100)
        assert len(lead_ids) == 1 and len(recording_ids) == 1  # "old-closed", recorded
        assert await batches.purge_leads(lead_ids, NOW, "retention") == 1
        frames, folded = wal_index(store._path)
        assert frames > folded  # within the first second: nothing folded yet
    frames, folded = wal_index(store._path)
    assert frames > 0 and folded == frames


async def test_expired_by_the_clock_alone(env):
    store, vault, _ = env
    recordings = vault.directory
    later = await Purger(store, vault).run(NOW + 29 * DAY)  # the 2-day-old lead is 31 now
    assert later.leads == 3  # old-closed, young-old-recording, young; old-open stays
    assert not any(recordings.iterdir())


async def test_purges_never_overlap(env):
    store, vault, _ = env
    assert await store.acquire_lease(retention.LEASE, "other-host:1", NOW, 300)
    report = await Purger(store, vault).run(NOW)
    assert report.skipped == "another purge is running"
    assert len(await store.list_leads()) == 4
    # a purge that died holding the lease blocks only until the lease expires
    report = await Purger(store, vault).run(NOW + 301)
    assert report.leads == 1


async def test_interrupted_purge_is_safe_and_the_next_one_finishes(env, monkeypatch):
    store, vault, leads = env
    recordings = vault.directory
    old_recording = leads["old-closed"][1]

    async def power_cut(self, *args):
        raise RuntimeError("power cut")

    # 1. In the leads phase, after the chunk's recording keys were shredded, before its rows
    # went: the lead stays for the next run, and its recording can no longer be opened.
    monkeypatch.setattr(PurgeBatches, "purge_leads", power_cut)
    monkeypatch.setattr(PgPurgeBatches, "purge_leads", power_cut)
    with pytest.raises(RuntimeError):
        await Purger(store, vault).run(NOW)
    monkeypatch.undo()
    assert len(await store.list_leads()) == 4
    assert await vault.keystore.get(old_recording) is None
    assert await vault.keystore.count() == 2
    assert (recordings / f"{old_recording}.cerec").exists()  # keyless: the next run takes it

    # 2. In the recordings phase, after the leads phase finished.
    monkeypatch.setattr(PurgeBatches, "mark_recordings_deleted", power_cut)
    monkeypatch.setattr(PgPurgeBatches, "mark_recordings_deleted", power_cut)
    with pytest.raises(RuntimeError):
        await Purger(store, vault).run(NOW)
    monkeypatch.undo()
    assert leads["old-closed"][0] not in {lead.id for lead in await store.list_leads()}
    assert await vault.keystore.count() == 1  # only the young recording's key is left
    for path in recordings.iterdir():  # whatever file is left of a shredded one has no key
        assert path.stem == leads["young"][1] or await vault.keystore.get(path.stem) is None

    # 3. The next purge finishes the work (the lease was released: no wait).
    report = await Purger(store, vault).run(NOW)
    assert (report.leads, report.recordings) == (0, 1)
    assert {p.stem for p in recordings.iterdir()} == {leads["young"][1]}
    statuses = {r.id: r.status for r in await store.list_recordings(include_deleted=True)}
    assert statuses[leads["young-old-recording"][1]] == "deleted"


async def test_files_an_interrupted_purge_left_are_removed_by_the_next(env, monkeypatch):
    store, vault, leads = env
    recordings = vault.directory

    def disk_error(ids):
        raise OSError("I/O error")

    monkeypatch.setattr(vault, "remove_files", disk_error)
    report = await Purger(store, vault).run(NOW)
    assert report.file_problem == "removing shredded files failed: I/O error"
    assert (report.leads, report.recordings, report.lead_recordings) == (1, 1, 1)
    assert [e.action for e in await store.audit_entries()] == ["retention.purge"]
    monkeypatch.undo()
    # keys gone and rows deleted, files still there: nothing names them any more
    assert len(list(recordings.iterdir())) == 3
    report = await Purger(store, vault).run(NOW)
    assert (report.leads, report.recordings, report.orphan_files) == (0, 0, 2)
    assert {p.stem for p in recordings.iterdir()} == {leads["young"][1]}


async def test_the_sweep_spares_files_with_a_live_row_or_a_key(env):
    """A restored store whose keystore isn't back yet (row, no key), and a recording whose row
    isn't written yet (key, no row), keep their files."""
    store, vault, leads = env
    recordings = vault.directory
    young = leads["young"][1]
    await vault.keystore.delete([young])  # as after a restore without the keystore
    keyed_only = "f" * 32
    (recordings / f"{keyed_only}.cerec").write_bytes(b"ciphertext")
    await vault.keystore.put(keyed_only, b"sealed", NOW)
    report = await Purger(store, vault).run(NOW)
    assert report.orphan_files == 0
    assert {p.stem for p in recordings.iterdir()} == {young, keyed_only}


def test_batches_follow_the_transaction_holds():
    sizer = retention.BatchSizer()
    assert sizer.size == retention.FIRST_BATCH
    sizer.held(sizer.size, retention.HOLD_TARGET_S * 4)  # 4x too slow: shrink halfway there
    assert sizer.size == (100 + 25) // 2
    for _ in range(20):
        sizer.held(sizer.size, retention.HOLD_TARGET_S / 100)  # much faster: grow to the cap
    assert sizer.size == retention.MAX_BATCH
    sizer.held(7, 10.0)  # a short last batch is ignored
    assert sizer.size == retention.MAX_BATCH
    for _ in range(40):
        sizer.held(sizer.size, 100.0)
    assert sizer.size == retention.MIN_BATCH


async def test_rate_limit_per_number_spans_midnight(env):
    """A lead late yesterday still counts today (the limits count the last 24 hours)."""
    store, _, _ = env
    widget = await store.add_widget("tight", "Tight", widget_settings_from_input({
        "group": "sales", "allowed_regions": ["PL"], "max_leads_per_number_per_day": 1}), NOW)
    midnight = (NOW // DAY + 1) * DAY
    kwargs = dict(phone_e164="+48601999999", phone_region="PL", phone_kind="mobile",
                  name=None, email=None, consent=Consent(False, False, "v7"))
    await store.create_lead(widget, now=midnight - 60, **kwargs)
    with pytest.raises(RateLimited):
        await store.create_lead(widget, now=midnight + 60, **kwargs)
    await store.create_lead(widget, now=midnight - 60 + DAY + 1, **kwargs)  # a day later: fine
    assert len(await store.leads_for_number("+48601999999")) == 2


async def test_schedule_runs_at_start(env):
    store, vault, _ = env
    scheduler = start_schedule(Purger(store, vault), interval_s=3600, clock=lambda: NOW)
    try:
        for _ in range(100):
            if await store.count_tombstones() == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    assert await store.count_tombstones() == 1


def test_cli_purge_dry_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CALLENGINE_ARI_PASSWORD", "x")
    monkeypatch.setenv("CALLENGINE_ADMIN_TOKEN", "a" * 20)
    monkeypatch.setenv("CALLENGINE_DATA_KEY", DATA_KEY_B64)
    (tmp_path / "c.toml").write_text('[store]\ndatabase = "ce.db"\n')
    assert cli.main(["--config", str(tmp_path / "c.toml"), "purge", "--dry-run"]) == 0
    assert "would purge 0 lead(s) and 0 recording(s)" in capsys.readouterr().out


def _target(store: Store, vault: RecordingVault) -> retention.PurgeTarget:
    directory = vault.directory.parent
    return retention.PurgeTarget(directory / "ce.db", directory / "ks.db", vault.directory,
                                 DATA_KEY, url=postgres.url_for(directory / "ce.db"))


def _children() -> list[int]:
    """This process's child processes (Linux)."""
    pid = os.getpid()
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


async def test_the_engine_purges_in_a_process_of_its_own(env):
    """As app.py runs it: the same purge as Purger.run, done by a child process."""
    store, vault, leads = env
    seen: list[tuple[str, int, int]] = []
    report = await retention.PurgeProcess(_target(store, vault), store).run(
        NOW, progress=lambda *args: seen.append(args))
    assert (report.leads, report.recordings, report.lead_recordings) == (1, 1, 1)
    assert report.by_widget == {"shop": (1, 2)}
    assert ("leads", 1, 1) in seen and ("recordings", 1, 1) in seen
    remaining = {lead.id for lead in await store.list_leads()}
    assert remaining == {leads[k][0] for k in ("old-open", "young-old-recording", "young")}
    assert {p.stem for p in vault.directory.iterdir()} == {leads["young"][1]}
    assert await vault.keystore.get(leads["old-closed"][1]) is None
    assert [e.action for e in await store.audit_entries()][-1] == "retention.purge"
    assert _children() == []


async def test_the_purge_process_writes_only_in_the_turns_it_is_given(env):
    store, vault, _ = env
    purge = retention.PurgeProcess(_target(store, vault), store)
    async with store.write_lock:  # as an intake or call-flow write in progress
        task = asyncio.create_task(purge.run(NOW))
        await asyncio.sleep(1.5)  # the child is up and waits for its first turn
        assert not task.done()
        assert await store.count_tombstones() == 0
    report = await asyncio.wait_for(task, 60)
    assert report.leads == 1 and await store.count_tombstones() == 1


@pytest.mark.parametrize("when", ["waiting for a turn", "holding a turn", "at its first batch"])
async def test_a_cancelled_purge_process_is_killed_and_frees_the_lock(env, when):
    store, vault, leads = env
    purge = retention.PurgeProcess(_target(store, vault), store)
    if when == "waiting for a turn":
        async with store.write_lock:
            task = asyncio.create_task(purge.run(NOW))
            await asyncio.sleep(1.5)
            assert _children()
            task.cancel()
            await asyncio.sleep(0.2)
        with pytest.raises(asyncio.CancelledError):
            await task  # its clean-up frees the lease: a write, once the lock is free
    elif when == "holding a turn":
        acquire = store.write_lock.acquire

        async def acquire_then_cancel() -> bool:
            got = await acquire()
            if not task.cancelling():
                task.cancel()  # lands while the child holds the turn just given
            return got

        store.write_lock.acquire = acquire_then_cancel
        try:
            task = asyncio.create_task(purge.run(NOW))
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            del store.write_lock.acquire
    else:
        batch = asyncio.Event()
        task = asyncio.create_task(purge.run(NOW, progress=lambda *_: batch.set()))
        await asyncio.wait_for(batch.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert _children() == []
    assert not store.write_lock.locked()
    # the next purge finds the lease free, carries on and finishes
    report = await Purger(store, vault).run(NOW)
    assert report.skipped is None
    assert await store.count_tombstones() == 1
    assert {p.stem for p in vault.directory.iterdir()} == {leads["young"][1]}


async def test_a_write_cancelled_at_its_begin_leaves_no_transaction_open(env):
    """As when a purge is cancelled mid-write: the connection must serve the next write."""
    store, _, _ = env
    task = asyncio.create_task(store.acquire_lease("job", "me", NOW, 60))
    await asyncio.sleep(0)  # it holds the write lock and waits for its BEGIN
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.acquire_lease("job", "me", NOW, 60)


async def test_a_purge_process_that_keeps_a_turn_too_long_is_killed(env, monkeypatch):
    """As when a host's busy cores starve the idle-priority purge mid-batch: the engine's
    writes must not wait for it."""
    store, vault, leads = env
    monkeypatch.setattr(retention, "TURN_LIMIT_S", 0.5)
    purge = retention.PurgeProcess(_target(store, vault), store)
    acquire = store.write_lock.acquire
    stopped: list[int] = []

    async def acquire_then_stop_the_child() -> bool:
        got = await acquire()
        if not stopped and asyncio.current_task() is task:
            stopped.extend(_children())
            os.kill(stopped[0], signal.SIGSTOP)  # it gets its turn, and no CPU
        return got

    store.write_lock.acquire = acquire_then_stop_the_child
    try:
        task = asyncio.create_task(purge.run(NOW))
        with pytest.raises(RuntimeError, match="held the store's write lock over 0.5 s"):
            await asyncio.wait_for(task, 30)
    finally:
        del store.write_lock.acquire
    assert stopped and _children() == []
    assert not store.write_lock.locked()
    report = await Purger(store, vault).run(NOW)  # its lease, if it took one, is free
    assert report.skipped is None and await store.count_tombstones() == 1


async def test_stopping_the_schedule_waits_for_a_running_purges_cleanup():
    """Shutdown (app._serve) stops the schedule before the store closes: a purge running then
    is cancelled and its cleanup (PurgeProcess: kill the child, wait for it, free the lease)
    is done by the time stop returns."""
    events: list[str] = []
    started = asyncio.Event()

    class SlowPurge:
        async def run(self, now: float) -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            finally:
                await asyncio.sleep(0.05)  # e.g. waiting for the killed child
                events.append("cleaned up")

    schedule = start_schedule(SlowPurge(), interval_s=3600)  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 5)
    await schedule.stop()
    events.append("stopped")
    assert events == ["cleaned up", "stopped"]
