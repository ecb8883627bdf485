"""A scheduled lead (a slot, or the next opening after hours) is dialled at its time, not
before, and still after the engine and its store were restarted in between."""

from __future__ import annotations

import asyncio

import pytest

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Strategy
from callengine.model import Consent
from callengine.storage import Store
from tests.support.engine import DATA_KEY, VISITOR, add_widget, poll
from tests.support.fake_ari import FakeAri

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def run_for(store: Store, ari: FakeAri, clock: Clock, seconds: float) -> None:
    engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=0.02),
                    clock=clock)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(seconds)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_scheduled_lead_is_dialled_at_its_time_after_a_restart(tmp_path):
    clock, ari = Clock(), FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), strategy=Strategy.RING_ALL)
        lead = await store.create_lead(
            widget, phone_e164=VISITOR, phone_region="PL", phone_kind="mobile", name=None,
            email=None, consent=Consent(False, False, "v1"), now=clock.now,
            scheduled_for=T0 + 600)
        clock.now = T0 + 599
        await run_for(store, ari, clock, 0.3)
        assert ari.requests("originate") == []  # not before its time
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:  # restarted
        assert (await store.get_lead(lead.id)).next_attempt_at == T0 + 600
        assert await store.next_due_at() == T0 + 600
        clock.now = T0 + 600
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=0.02),
                        clock=clock)
        task = asyncio.create_task(engine.run())
        try:
            assert await poll(lambda: _originated(ari))
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def _originated(ari: FakeAri) -> bool:
    return bool(ari.requests("originate"))
