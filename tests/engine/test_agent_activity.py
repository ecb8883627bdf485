"""Which agents a running engine holds and what each is doing (the panel's live board reads
Engine.agent_activity), and that an agent given back by one call and taken by the next stays
the next call's when the first ends: the fake ARI and a real store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Strategy
from callengine.model import LEAD_DONE, Consent, Lead
from callengine.storage import Store
from tests.support.engine import DATA_KEY, VISITOR, add_widget, poll
from tests.support.fake_ari import FakeAri


@asynccontextmanager
async def running(tmp_path, ari: FakeAri, strategy: Strategy, leads: int
                  ) -> AsyncIterator[tuple[Store, Engine, list[Lead]]]:
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1", "agent2"), strategy=strategy)
        made = [await store.create_lead(
            widget, phone_e164=f"{VISITOR[:-1]}{i}", phone_region="PL", phone_kind="mobile", name=None,
            email=None, consent=Consent(False, False, "v1"), now=time.time() + i * 0.001)
            for i in range(leads)]
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=3, poll_interval_s=0.05))
        task = asyncio.create_task(engine.run())
        try:
            yield store, engine, made
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def leg_of(ari: FakeAri, lead: Lead, leg: str) -> str | None:
    return next((c[2] for c in ari.requests("originate") if c[3] == (lead.id, leg)), None)


def dialled(ari: FakeAri, lead: Lead, leg: str):
    async def check() -> str | None:
        return leg_of(ari, lead, leg)
    return check


def activity_is(engine: Engine, expected: dict[str, str]):
    async def check() -> bool:
        return engine.agent_activity() == expected or None
    return check


async def test_a_sequential_call_rings_one_agent_holds_the_next_and_frees_it_on_answer(
        tmp_path):
    ari = FakeAri(answer=False)
    async with running(tmp_path, ari, Strategy.SEQUENTIAL, leads=2) as (store, engine, leads):
        first, second = leads
        await poll(activity_is(engine, {"PJSIP/agent1": "ringing", "PJSIP/agent2": "held"}))
        assert leg_of(ari, second, "agent:0") is None  # both agents are the first call's
        ari.answer(leg_of(ari, first, "agent:0"))
        # agent2 was kept for later: once agent1 answered, the second lead may have it
        second_agent = await poll(dialled(ari, second, "agent:0"))
        assert [c[1] for c in ari.requests("originate") if c[2] == second_agent] == [
            "PJSIP/agent2"]
        await poll(activity_is(engine, {"PJSIP/agent1": "on-call",
                                        "PJSIP/agent2": "ringing"}))


async def test_an_agent_given_back_and_taken_by_the_next_call_stays_its_own(tmp_path):
    ari = FakeAri(answer=False)
    async with running(tmp_path, ari, Strategy.RING_ALL, leads=3) as (store, engine, leads):
        first, second, third = leads
        await poll(dialled(ari, first, "agent:1"))
        ari.answer(leg_of(ari, first, "agent:0"))  # agent2 is hung up and given back …
        taken = await poll(dialled(ari, second, "agent:0"))  # … to the second
        assert [c[1] for c in ari.requests("originate") if c[2] == taken] == ["PJSIP/agent2"]
        visitor = await poll(dialled(ari, first, "visitor"))
        ari.answer(visitor)
        ari.reject(visitor, 16, "Normal Clearing")  # the first call ends …
        await poll(lambda: _lead_done(store, first.id))
        # … and agent1 goes to the third lead, while agent2 stays the second call's
        third_agent = await poll(dialled(ari, third, "agent:0"))
        assert [c[1] for c in ari.requests("originate") if c[2] == third_agent] == [
            "PJSIP/agent1"]
        await asyncio.sleep(0.3)  # dispatch rounds run every 0.05 s: none may take agent2
        assert engine.agent_activity() == {"PJSIP/agent1": "ringing",
                                           "PJSIP/agent2": "ringing"}
        assert [c[1] for c in ari.requests("originate")].count("PJSIP/agent2") == 2


async def _lead_done(store: Store, lead_id: str) -> bool | None:
    return (await store.get_lead(lead_id)).status == LEAD_DONE or None
