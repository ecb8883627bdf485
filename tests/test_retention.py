"""Retention purges with a controllable clock: what expires goes (recordings crypto-shredded,
leads tombstoned), what doesn't stays; dry runs change nothing; purges never overlap and can be
interrupted anywhere."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from callengine import cli, crypto, retention
from callengine.flow import Outcome, Result, Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.recordings import RecordingVault
from callengine.retention import DAY, Purger, start_schedule
from callengine.store import KeyStore, PurgeBatches, RateLimited, Store
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
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store, \
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
    assert (report.leads, report.recordings, report.lead_recordings) == (1, 2, 0)
    remaining = {lead.id for lead in await store.list_leads()}
    assert remaining == {leads[k][0] for k in ("old-open", "young-old-recording", "young")}
    assert await store.attempts_for(leads["old-closed"][0]) == []
    files = {p.stem for p in recordings.iterdir()}
    assert files == {leads["young"][1]}
    old_recording = await store.get_recording(leads["young-old-recording"][1])
    assert old_recording.status == "deleted"
    # The tombstone keeps the counts and the consent facts, and no personal data.
    assert await store.count_tombstones("shop") == 1
    db = sqlite3.connect(recordings.parent / "ce.db")
    row = db.execute("SELECT * FROM lead_tombstones").fetchone()
    assert "601000001" not in repr(row) and "Ann" not in repr(row)
    assert row[4] == "connected"
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
    assert report.lead_recordings == 1
    assert not (vault.directory / f"{recording_id}.cerec").exists()
    assert await vault.keystore.get(recording_id) is None
    assert lead_id not in {lead.id for lead in await store.list_leads()}
    assert await store.count_tombstones("long") == 1


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
    monkeypatch.setattr(retention, "FIRST_BATCH", 1)
    monkeypatch.setattr(retention, "MAX_BATCH", 1)
    real = PurgeBatches.mark_recordings_deleted
    calls = 0

    async def crash_on_second_batch(self, ids, now):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        await real(self, ids, now)

    monkeypatch.setattr(PurgeBatches, "mark_recordings_deleted", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        await Purger(store, vault).run(NOW)
    monkeypatch.setattr(PurgeBatches, "mark_recordings_deleted", real)
    # The crash hit after the second batch's keys were shredded, before its rows said so: its
    # file stays until the next run (the first batch's went), and it can't be opened.
    assert len(list(recordings.iterdir())) == 2
    assert await vault.keystore.count() == 1  # only the young recording's key is left
    report = await Purger(store, vault).run(NOW)  # the lease was released: no wait
    assert report.leads == 1
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
    assert (report.leads, report.recordings) == (1, 2)
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
    """The per-number index is keyed by day: a lead late yesterday still counts today."""
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
        scheduler.shutdown(wait=False)
    assert await store.count_tombstones() == 1


def test_cli_purge_dry_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CALLENGINE_ARI_PASSWORD", "x")
    monkeypatch.setenv("CALLENGINE_ADMIN_TOKEN", "a" * 20)
    monkeypatch.setenv("CALLENGINE_DATA_KEY", DATA_KEY_B64)
    (tmp_path / "c.toml").write_text('[store]\ndatabase = "ce.db"\n')
    assert cli.main(["--config", str(tmp_path / "c.toml"), "purge", "--dry-run"]) == 0
    assert "would purge 0 lead(s) and 0 recording(s)" in capsys.readouterr().out
