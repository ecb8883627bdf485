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
