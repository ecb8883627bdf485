"""Presence in the running engine (fake ARI, real store): offline agents and agents on a call
the engine did not make are not rung, nor paused ones; a change reported while a lead waits
wakes the dispatcher; the view is rebuilt from the endpoint list on every reconnect (changes
missed while deaf count); the phone's *45 pauses and resumes its own agent only; the board
shows each state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from callengine import agent_phone
from callengine.access import Principal, Role
from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Strategy
from callengine.model import LEAD_CALLING, LEAD_QUEUED, Consent, Widget
from callengine.services import Services
from callengine.storage import Store
from tests.engine.test_driver import lead_is
from tests.support.engine import DATA_KEY, add_widget, poll
from tests.support.fake_ari import FakeAri

ADMIN = Principal("ops", Role.ADMIN)
AGENTS = ("agent1", "agent2", "agent3")


def rung(ari: FakeAri) -> list[str]:
    return [c[1] for c in ari.requests("originate") if "@pstn" not in c[1]]


async def once_rung(ari: FakeAri, count: int) -> list[str]:
    """The agents rung once `count` originates are made: the lead is CALLING in the store a
    moment before the engine's originate requests go out."""
    await poll(lambda: _async(len(rung(ari)) >= count))
    return rung(ari)


@asynccontextmanager
async def running(tmp_path, ari: FakeAri) -> AsyncIterator[tuple[Store, Services, Engine, Widget]]:
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        services = Services(store, agent_activity=lambda: engine.agent_activity())
        widget = await add_widget(store, agents=AGENTS, strategy=Strategy.RING_ALL)
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=3, poll_interval_s=5),
                        inbound={agent_phone.PURPOSE: agent_phone.pause_handler(
                            services.config.pause_from_phone)})
        task = asyncio.create_task(engine.run())
        try:
            await asyncio.wait_for(engine.ready.wait(), 5)
            yield store, services, engine, widget
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def new_lead(store: Store, widget: Widget, number: str = "+48601234567"):
    return await store.create_lead(
        widget, phone_e164=number, phone_region="PL", phone_kind="mobile", name=None,
        email=None, consent=Consent(False, False, "v1"), now=time.time())


def asterisk_with(**states: str) -> FakeAri:
    """agent1=online, agent2=offline, agent3=busy (online, on someone else's call)."""
    ari = FakeAri(answer=False)
    for name, state in states.items():
        busy = state == "busy"
        ari.set_endpoint(f"PJSIP/{name}", "online" if busy else state,
                         ("1733130000.12",) if busy else (), quietly=True)
    return ari


async def test_only_online_agents_not_on_anothers_call_are_rung(tmp_path):
    ari = asterisk_with(agent1="online", agent2="offline", agent3="busy")
    async with running(tmp_path, ari) as (store, services, engine, widget):
        lead = await new_lead(store, widget)
        engine.wake()  # as the intake does
        await poll(lead_is(store, lead.id, LEAD_CALLING))
        assert await once_rung(ari, 1) == ["PJSIP/agent1"]
        assert ("endpoint_states",) in ari.calls
        # agent1's own ringing channel is the engine's: it rings, it is not "busy elsewhere"
        board = await services.board.snapshot(ADMIN)
        assert {a["name"]: a["state"] for a in board["agents"]} == {
            "agent1": "ringing", "agent2": "offline", "agent3": "busy-elsewhere"}


async def test_a_waiting_lead_rings_the_agent_who_registers_or_hangs_up(tmp_path):
    """Nobody can be rung: the lead waits. The phone registers (EndpointStateChange online) →
    rung at once, not at the next poll (5 s); likewise when another's call on agent3 ends."""
    ari = asterisk_with(agent1="offline", agent2="offline", agent3="busy")
    async with running(tmp_path, ari) as (store, _, engine, widget):
        first = await new_lead(store, widget)
        engine.wake()  # as the intake does
        await asyncio.sleep(0.2)
        assert (await store.get_lead(first.id)).status == LEAD_QUEUED and rung(ari) == []
        ari.set_endpoint("PJSIP/agent2", "online")
        await poll(lead_is(store, first.id, LEAD_CALLING), timeout=2)
        assert await once_rung(ari, 1) == ["PJSIP/agent2"]
        second = await new_lead(store, widget, "+48601234568")
        engine.wake()  # as the intake does
        await asyncio.sleep(0.2)
        assert (await store.get_lead(second.id)).status == LEAD_QUEUED
        ari.set_endpoint("PJSIP/agent3", "online", ())
        await poll(lead_is(store, second.id, LEAD_CALLING), timeout=2)
        assert await once_rung(ari, 2) == ["PJSIP/agent2", "PJSIP/agent3"]


@pytest.mark.parametrize("restarted", [False, True])
async def test_the_view_is_rebuilt_after_a_reconnect(tmp_path, restarted):
    """While the websocket is down agent1 registers and agent2 unregisters: no event tells;
    the list read on Connected does. The next lead rings agent1, not agent2."""
    ari = asterisk_with(agent1="offline", agent2="online", agent3="offline")
    async with running(tmp_path, ari) as (store, _, engine, widget):
        ari.go_down()
        await poll(lambda: _async(not engine.ready.is_set()))
        ari.set_endpoint("PJSIP/agent1", "online", quietly=True)
        ari.set_endpoint("PJSIP/agent2", "offline", quietly=True)
        if restarted:
            ari.asterisk_started += "-restarted"
        lists = len(ari.requests("endpoint_states"))
        ari.come_back()
        await asyncio.wait_for(engine.ready.wait(), 5)
        assert len(ari.requests("endpoint_states")) == lists + 1
        lead = await new_lead(store, widget)
        engine.wake()  # as the intake does
        await poll(lead_is(store, lead.id, LEAD_CALLING))
        assert await once_rung(ari, 1) == ["PJSIP/agent1"]


async def test_a_paused_agent_is_not_rung_until_resumed(tmp_path):
    ari = asterisk_with(agent1="online", agent2="online", agent3="offline")
    async with running(tmp_path, ari) as (store, services, engine, widget):
        await services.config.update_agent(ADMIN, "agent1", paused=True)
        first = await new_lead(store, widget)
        engine.wake()  # as the intake does
        await poll(lead_is(store, first.id, LEAD_CALLING))
        assert await once_rung(ari, 1) == ["PJSIP/agent2"]
        board = await services.board.snapshot(ADMIN)
        assert [(a["name"], a["state"], a["paused"]) for a in board["agents"]] == [
            ("agent1", "paused", True), ("agent2", "ringing", False),
            ("agent3", "offline", False)]
        ari.reject(ari.channel_for("agent2"))  # busy: the lead ends, agent2 is free again
        await services.config.update_agent(ADMIN, "agent1", paused=False)
        second = await new_lead(store, widget, "+48601234568")
        engine.wake()  # as the intake does
        await poll(lead_is(store, second.id, LEAD_CALLING))
        assert sorted((await once_rung(ari, 3))[1:]) == ["PJSIP/agent1", "PJSIP/agent2"]


def played(ari: FakeAri, channel_id: str) -> list[str]:
    return [c[2] for c in ari.requests("play") if c[1] == channel_id]


async def test_the_feature_code_pauses_and_resumes_the_agent_of_that_phone(tmp_path):
    ari = asterisk_with(agent1="online", agent2="online", agent3="online")
    async with running(tmp_path, ari) as (store, services, engine, widget):
        ari.hand_over("1733.1", "PJSIP/agent1", "agent-pause", "agent1",
                      name="PJSIP/agent1-00000003")
        await poll(lambda: _async(("hangup", "1733.1") in ari.calls or None))
        assert ("answer_channel", "1733.1") in ari.calls
        assert played(ari, "1733.1") == ["sound:agent-loggedoff"]
        assert {a.name: a.paused for a in await store.list_agents()}["agent1"] is True
        lead = await new_lead(store, widget)
        engine.wake()  # as the intake does
        await poll(lead_is(store, lead.id, LEAD_CALLING))
        assert sorted(await once_rung(ari, 2)) == ["PJSIP/agent2", "PJSIP/agent3"]

        ari.hand_over("1733.2", "PJSIP/agent1", "agent-pause", "agent1",
                      name="PJSIP/agent1-00000004")
        await poll(lambda: _async(("hangup", "1733.2") in ari.calls or None))
        assert played(ari, "1733.2") == ["sound:agent-loginok"]
        assert {a.name: a.paused for a in await store.list_agents()}["agent1"] is False
        entries = [(e.action, e.actor, e.target) for e in await store.audit_entries()
                   if e.action.startswith("config.agent.")]
        assert entries[-2:] == [("config.agent.pause", "phone:PJSIP/agent1", "agent:agent1"),
                                ("config.agent.resume", "phone:PJSIP/agent1", "agent:agent1")]


@pytest.mark.parametrize("args, name, disabled", [
    (("agent1",), "PJSIP/agent2-00000005", False),   # another phone naming agent1
    (("agent9",), "PJSIP/agent9-00000001", False),   # no such agent
    (("agent1",), "PJSIP/agent1-00000006", True),    # agent1 disabled
    ((), "PJSIP/agent1-00000007", False),            # the dialplan passed no endpoint
])
async def test_the_feature_code_changes_nothing_for_anyone_else(tmp_path, args, name, disabled):
    ari = asterisk_with(agent1="online")
    async with running(tmp_path, ari) as (store, services, engine, widget):
        if disabled:
            await services.config.update_agent(ADMIN, "agent1", enabled=False)
        before = await store.list_agents()
        ari.hand_over("1733.9", name.rsplit("-", 1)[0], "agent-pause", *args, name=name)
        await poll(lambda: _async(("hangup", "1733.9") in ari.calls or None))
        assert played(ari, "1733.9") == ["sound:beeperr"]
        assert await store.list_agents() == before


async def _async(value):
    return value
