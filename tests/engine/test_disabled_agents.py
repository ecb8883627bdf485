"""A disabled agent is not rung, and an agent disabled or enabled through the configuration
service reaches a running engine at its next dispatch round, without a restart; the call in
progress of an agent disabled meanwhile goes on (the fake ARI, a real store)."""

from __future__ import annotations

import asyncio
import time

import pytest

from callengine.access import Principal, Role
from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.errors import Conflict
from callengine.flow import Strategy
from callengine.model import LEAD_CALLING, LEAD_DONE, LEAD_QUEUED, Consent
from callengine.services import Services
from callengine.storage import Store
from tests.engine.test_driver import lead_is, originated
from tests.support.engine import DATA_KEY, VISITOR, add_widget, poll
from tests.support.fake_ari import FakeAri

ADMIN = Principal("ops", Role.ADMIN)


def rung(ari: FakeAri) -> list[str]:
    return [c[1] for c in ari.requests("originate") if "@pstn" not in c[1]]


async def test_a_disabled_agent_is_not_rung_and_changes_reach_the_running_engine(tmp_path):
    ari = FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        config = Services(store).config
        widget = await add_widget(store, agents=("agent1", "agent2"), strategy=Strategy.RING_ALL)
        await config.update_agent(ADMIN, "agent2", enabled=False)

        async def lead(number: str):
            return await store.create_lead(
                widget, phone_e164=number, phone_region="PL", phone_kind="mobile", name=None,
                email=None, consent=Consent(False, False, "v1"), now=time.time())

        first = await lead(VISITOR)
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=0.05))
        task = asyncio.create_task(engine.run())
        try:
            agent1 = await poll(originated(ari, "agent1"))
            await asyncio.sleep(0.3)  # several dispatch rounds
            assert rung(ari) == ["PJSIP/agent1"]  # agent2 is disabled: not rung

            # While agent1 rings for the first lead: agent1 disabled, agent2 enabled, through
            # the service, the engine running on. The next lead rings agent2 only.
            await config.update_agent(ADMIN, "agent1", enabled=False)
            await config.update_agent(ADMIN, "agent2", enabled=True)
            second = await lead("+48601234568")
            agent2 = await poll(originated(ari, "agent2"))
            await poll(lead_is(store, second.id, LEAD_CALLING))
            assert rung(ari) == ["PJSIP/agent1", "PJSIP/agent2"]

            # The call agent1 was being rung for goes on: agent1 answers, the visitor is dialled.
            ari.answer(agent1)
            await poll(originated(ari, "@pstn"))
            assert (await store.get_lead(first.id)).status == LEAD_CALLING

            # agent2 busy: the second lead is done and agent2 free, then disabled. A new lead
            # waits, queued (agent1 is on the first call), until agent2 is enabled again.
            ari.reject(agent2)
            await poll(lead_is(store, second.id, LEAD_DONE))
            await config.update_agent(ADMIN, "agent2", enabled=False)
            third = await lead("+48601234569")
            await asyncio.sleep(0.3)
            assert (await store.get_lead(third.id)).status == LEAD_QUEUED
            await config.update_agent(ADMIN, "agent2", enabled=True)
            await poll(lead_is(store, third.id, LEAD_CALLING))
            assert rung(ari) == ["PJSIP/agent1", "PJSIP/agent2", "PJSIP/agent2"]
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_an_endpoint_held_by_a_call_is_not_changed_until_the_call_ends(tmp_path):
    """The services beside the engine (as app.py builds them) see what its agents do: the
    endpoint of an agent being rung is not changed (the engine, knowing agents by endpoint,
    would ring the new one for the next lead meanwhile); once the call is over it is."""
    ari = FakeAri(answer=False)
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",))
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=0.05))
        config = Services(store, agent_activity=engine.agent_activity).config
        lead = await store.create_lead(
            widget, phone_e164=VISITOR, phone_region="PL", phone_kind="mobile", name=None,
            email=None, consent=Consent(False, False, "v1"), now=time.time())
        task = asyncio.create_task(engine.run())
        try:
            channel = await poll(originated(ari, "agent1"))
            with pytest.raises(Conflict, match="agent 'agent1' is being rung for a call"):
                await config.update_agent(ADMIN, "agent1", endpoint="PJSIP/desk7")
            ari.reject(channel)
            await poll(lead_is(store, lead.id, LEAD_DONE))

            async def freed() -> bool:
                return engine.agent_activity() == {}
            await poll(freed)
            agent = await config.update_agent(ADMIN, "agent1", endpoint="PJSIP/desk7")
            assert agent.endpoint == "PJSIP/desk7"
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
