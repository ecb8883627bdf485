"""Consent evidence from the engine (fake ARI, real store): an attempt records whether the
in-call recording notice was played to the visitor — set by the engine when the notice's
playback finished, before the call is bridged and recorded."""

from __future__ import annotations

import asyncio

import pytest

from callengine.storage import KeyStore, Store
from tests.engine.test_driver import engine_running, lead_is
from tests.recordings.test_recorder import NoMixMonitor, _lead_and_attempt, refusing_engine
from tests.support.engine import DATA_KEY, poll
from tests.support.fake_ari import FakeAri


async def test_a_recorded_call_records_the_notice_played(tmp_path, monkeypatch):
    ari = FakeAri()
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        # the tap refuses to start: no tap is needed to see the notice played
        engine, _ = refusing_engine(tmp_path, monkeypatch, store, keystore, ari, NoMixMonitor())
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
