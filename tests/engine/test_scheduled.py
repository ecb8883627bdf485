"""A scheduled lead (a slot, or the next opening after hours) is dialled at its time, not
before, and still after the engine and its store were restarted in between."""

from __future__ import annotations

import asyncio
import time

import pytest

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Strategy
from callengine.model import Consent
from callengine.storage import Store
from callengine.telephony import TelephonyError
from tests.support.engine import DATA_KEY, VISITOR, add_widget, poll
from tests.support.fake_ari import FakeAri, failure

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


# ---- the dispatcher's timer: with a poll interval of a minute, only the timer dials in time ----

async def _engine_with_timer(store: Store, ari: FakeAri) -> tuple[Engine, asyncio.Task]:
    engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=60))
    task = asyncio.create_task(engine.run())
    await asyncio.wait_for(engine.ready.wait(), 5)
    return engine, task


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_lead_scheduled_soon_is_dialled_at_its_time_not_at_the_next_poll(tmp_path):
    ari = FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), strategy=Strategy.RING_ALL)
        engine, task = await _engine_with_timer(store, ari)
        try:
            await asyncio.sleep(0.05)  # the first round is over: the dispatcher waits
            due = time.time() + 0.4
            await store.create_lead(
                widget, phone_e164=VISITOR, phone_region="PL", phone_kind="mobile", name=None,
                email=None, consent=Consent(False, False, "v1"), now=time.time(),
                scheduled_for=due)
            engine.wake()  # as intake does
            await asyncio.sleep(0.1)
            assert ari.requests("originate") == []  # not before its time
            assert await poll(lambda: _originated(ari), timeout=10)
            assert time.time() >= due
        finally:
            await _stop(task)


async def test_a_retry_is_dialled_at_its_time_not_at_the_next_poll(tmp_path):
    ari = FakeAri(answer=False,
                  fail={"originate": [failure(TelephonyError, "POST /channels", unavailable=True)]})
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), strategy=Strategy.RING_ALL,
                                  max_attempts=2, retry_delay_s=1)
        lead = await store.create_lead(
            widget, phone_e164=VISITOR, phone_region="PL", phone_kind="mobile", name=None,
            email=None, consent=Consent(False, False, "v1"), now=time.time())
        engine, task = await _engine_with_timer(store, ari)
        try:
            async def twice() -> bool:
                return len(ari.requests("originate")) == 2
            assert await poll(twice, timeout=10)
            first, second = await store.attempts_for(lead.id)
            assert second.started_at - first.started_at >= 1
        finally:
            await _stop(task)
