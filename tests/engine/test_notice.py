"""Consent evidence from the engine (fake ARI, real store): an attempt records whether the
in-call recording notice was played to the visitor — set by the engine when the notice's
playback finished, before the call is bridged and recorded."""

from __future__ import annotations

import asyncio

import pytest

from callengine import crypto
from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.media import fifo as fifo_mod
from callengine.media.fifo import FifoTap, ensure_fifo_dir
from callengine.recordings import RecordingSetup, RecordingVault
from callengine.storage import KeyStore, Store
from tests.engine.test_driver import engine_running, lead_is
from tests.recordings.test_recorder import NoMixMonitor, _lead_and_attempt
from tests.support.engine import DATA_KEY, poll
from tests.support.fake_ari import FakeAri
from tests.support.pipes import RefusingFcntl


async def test_a_recorded_call_records_the_notice_played(tmp_path, monkeypatch):
    monkeypatch.setattr(fifo_mod, "fcntl", RefusingFcntl())  # no tap needed for the notice
    fifo_dir = tmp_path / "fifo"
    ensure_fifo_dir(fifo_dir, None)
    ari = FakeAri()
    public = crypto.generate_recipient_keypair()[1]
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        vault = RecordingVault(tmp_path / "recordings", keystore)
        vault.directory.mkdir()
        setup = RecordingSetup("fifo", vault, public,
                               lambda: FifoTap(NoMixMonitor(), fifo_dir, "/asterisk/fifo", None))
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=1, poll_interval_s=0.05),
                        recording=setup)
        lead = await _lead_and_attempt(store)
        task = asyncio.create_task(engine.run())
        try:
            await poll(lead_is(store, lead.id, "calling", "connected"))
            assert any(c[2] == "sound:notice" for c in ari.requests("play"))
            ari.far_end_hangs_up("@pstn")
            await poll(lead_is(store, lead.id, "done"))
            attempt, = await store.attempts_for(lead.id)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert attempt.notice_played is True


async def test_an_unrecorded_call_played_no_notice(tmp_path):
    ari = FakeAri()
    async with engine_running(tmp_path, ari, recording_notice="sound:notice") as (store, lead, _):
        await poll(lead_is(store, lead.id, "calling", "connected"))
        ari.far_end_hangs_up("@pstn")
        await poll(lead_is(store, lead.id, "done"))
        attempt, = await store.attempts_for(lead.id)
    assert attempt.notice_played is False
    assert not any(c[2] == "sound:notice" for c in ari.requests("play"))
