"""One engine, two Asterisk nodes (callengine.nodes over two fake ARIs, real store): an agent
is rung on the node its phone is online on, the visitor is dialled and bridged on the node of
the agent who answered, never across; a node whose events stay lost is taken for down, its
calls closed with that cause and its agents skipped, while the other node goes on dialling; a
node that comes back is used again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Strategy
from callengine.model import LEAD_CALLING, Widget
from callengine.nodes import AsteriskNodes
from callengine.storage import Store
from callengine.telephony import (
    AsteriskShuttingDown, ChannelRinging, Connected, Disconnected, EndpointState, NodeDown,
    TelephonyError,
)
from tests.engine.test_driver import lead_is
from tests.support.engine import DATA_KEY, add_widget, poll, queue_lead
from tests.support.fake_ari import FakeAri, failure

DOWN_AFTER_S = 0.5


async def _async(value):
    return value


def node_with(**states: str) -> FakeAri:
    ari = FakeAri(answer=False)
    for name, state in states.items():
        ari.set_endpoint(f"PJSIP/{name}", state, quietly=True)
    return ari


@asynccontextmanager
async def running(tmp_path, nodes: AsteriskNodes
                  ) -> AsyncIterator[tuple[Store, Engine, Widget]]:
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1", "agent2"), strategy=Strategy.RING_ALL)
        engine = Engine(store, nodes, DialingConfig(max_concurrent_calls=3, poll_interval_s=5))
        task = asyncio.create_task(engine.run())
        try:
            await asyncio.wait_for(engine.ready.wait(), 5)
            yield store, engine, widget
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def originated(ari: FakeAri) -> list[str]:
    return [c[1] for c in ari.requests("originate")]


async def test_a_call_stays_on_the_node_of_the_agent_who_answered(tmp_path):
    a, b = node_with(agent1="offline", agent2="offline"), node_with(agent2="online")
    async with running(tmp_path, AsteriskNodes({"a": a, "b": b})) as (store, engine, widget):
        lead = await queue_lead(store, widget)
        engine.wake()
        await poll(lambda: _async(originated(b) == ["PJSIP/agent2"]))
        b.answer(b.channel_for("agent2"))
        await poll(lambda: _async(any("@pstn" in e for e in originated(b))))
        b.answer(b.channel_for("@pstn"))
        await poll(lambda: _async(bool(b.requests("add_to_bridge"))))
        assert originated(a) == [] and a.requests("create_bridge") == []
        (_, bridge, members), = b.requests("add_to_bridge")
        assert bridge in b.bridges and set(members) == {b.channel_for("agent2"),
                                                       b.channel_for("@pstn")}
        b.far_end_hangs_up("@pstn")
        await poll(lead_is(store, lead.id, "done"))
        assert (await store.attempts_for(lead.id))[0].outcome == "connected"


async def test_a_node_down_closes_its_calls_with_the_cause_and_is_skipped(tmp_path):
    a, b = node_with(agent1="online"), node_with(agent2="online")
    nodes = AsteriskNodes({"a": a, "b": b}, down_after_s=DOWN_AFTER_S)
    async with running(tmp_path, nodes) as (store, engine, widget):
        lead = await queue_lead(store, widget)
        engine.wake()
        await poll(lambda: _async(originated(a) == ["PJSIP/agent1"]
                                  and originated(b) == ["PJSIP/agent2"]))
        b.answer(b.channel_for("agent2"))  # agent2 wins: agent1 (on a) is hung up
        await poll(lambda: _async(any("@pstn" in e for e in originated(b))))
        b.answer(b.channel_for("@pstn"))
        await poll(lambda: _async(bool(b.requests("add_to_bridge"))))
        assert a.channels == {}

        b.go_down()  # node b stops; its events stay lost
        await asyncio.sleep(DOWN_AFTER_S / 2)
        assert (await store.get_lead(lead.id)).status == LEAD_CALLING  # a drop, not yet down
        attempt = await poll(lambda: _closed_attempt(store, lead.id), timeout=5)
        assert attempt.outcome == "failed"
        assert attempt.cause == "interrupted: Asterisk node b down"
        assert engine.ready.is_set()  # node a still dials
        await poll(lambda: _async(engine.agent_activity().get("PJSIP/agent2") == "offline"))

        second = await queue_lead(store, widget, "+48601234568")
        engine.wake()
        await poll(lambda: _async(originated(a).count("PJSIP/agent1") == 2))
        assert (await store.get_lead(second.id)).status == LEAD_CALLING
        assert originated(b) == ["PJSIP/agent2", originated(b)[1]]  # nothing new on b

        b.come_back()  # Connected again: agent2 is rung there once more
        await poll(lambda: _async(engine.agent_activity().get("PJSIP/agent2") != "offline"))


async def _closed_attempt(store: Store, lead_id: str):
    attempts = await store.attempts_for(lead_id)
    return attempts[0] if attempts and attempts[0].outcome is not None else None


async def test_endpoint_states_merge_over_the_nodes_that_are_up():
    a, b = FakeAri(answer=False), FakeAri(answer=False)
    a.set_endpoint("PJSIP/agent1", "offline", quietly=True)
    b.set_endpoint("PJSIP/agent1", "online", quietly=True)
    nodes = AsteriskNodes({"a": a, "b": b}, down_after_s=DOWN_AFTER_S)
    events = nodes.events()
    got = [await anext(events), await anext(events)]
    assert sorted(got, key=repr) == [Connected("boot-1", node="a"), Connected("boot-1", node="b")]
    assert await nodes.endpoint_states() == [EndpointState("PJSIP/agent1", "online")]
    b.set_endpoint("PJSIP/agent1", "offline")  # its phone unregisters from b
    assert await anext(events) == EndpointState("PJSIP/agent1", "offline")
    a.set_endpoint("PJSIP/agent1", "online")  # and registers with a
    assert await anext(events) == EndpointState("PJSIP/agent1", "online")
    await nodes.originate("PJSIP/agent1", "ce-main-1", app_args=[], timeout=5)
    assert originated(a) == ["PJSIP/agent1"] and originated(b) == []
    assert await anext(events) == EndpointState("PJSIP/agent1", "online", ("ce-main-1",))
    assert await anext(events) == ChannelRinging("ce-main-1")
    a.go_down()
    assert await anext(events) == Disconnected("websocket closed (1006)", node="a")
    assert await anext(events) == EndpointState("PJSIP/agent1", "offline")  # b's view now
    assert await asyncio.wait_for(anext(events), 5) == NodeDown(
        "a", ("ce-main-1",), "Asterisk node a down")
    await events.aclose()


async def test_an_agent_is_rung_on_the_next_node_when_the_best_one_does_not_answer():
    """Node a is going down, its websocket not closed yet: the agent's originate there finds no
    Asterisk, so it goes to b, where the agent is online too; a refusal from a node that
    answers (500) is the leg's failure, not a reason to try elsewhere."""
    a, b = node_with(agent1="online"), node_with(agent1="online")
    nodes = AsteriskNodes({"a": a, "b": b}, down_after_s=DOWN_AFTER_S)
    events = nodes.events()
    for _ in range(2):
        await anext(events)  # both connected
    await nodes.endpoint_states()
    a.fail("originate", failure(TelephonyError, "originate", unavailable=True))
    await nodes.originate("PJSIP/agent1", "ce-main-1", app_args=[], timeout=5)
    assert originated(b) == ["PJSIP/agent1"] and nodes.node_of("ce-main-1") == "b"
    a.fail("originate", TelephonyError)
    with pytest.raises(TelephonyError):
        await nodes.originate("PJSIP/agent1", "ce-main-2", app_args=[], timeout=5)
    assert originated(b) == ["PJSIP/agent1"] and nodes.node_of("ce-main-2") is None
    await events.aclose()


async def test_a_node_shutting_down_gets_no_new_legs_until_it_is_back():
    """Asterisk's "core stop" hangs its channels up first (AsteriskShuttingDown) and answers
    POST /channels with 500 until its websocket closes: new agents' legs go elsewhere."""
    a, b = node_with(agent1="online"), node_with(agent1="online")
    nodes = AsteriskNodes({"a": a, "b": b}, down_after_s=DOWN_AFTER_S)
    events = nodes.events()
    for _ in range(2):
        await anext(events)
    await nodes.endpoint_states()
    a.emit(AsteriskShuttingDown("ce-main-0"))
    assert await anext(events) == AsteriskShuttingDown(
        "ce-main-0", node="a", reason="Asterisk node a shut down")
    await nodes.originate("PJSIP/agent1", "ce-main-1", app_args=[], timeout=5)
    assert originated(a) == [] and originated(b) == ["PJSIP/agent1"]
    a.reconnect()  # it is back
    seen = []
    while not seen or seen[-1] != Connected("boot-1", node="a"):
        seen.append(await asyncio.wait_for(anext(events), 5))
    assert Disconnected("websocket closed (1006)", node="a") in seen
    await nodes.originate("PJSIP/agent1", "ce-main-2", app_args=[], timeout=5)
    assert originated(a) == ["PJSIP/agent1"]
    await events.aclose()
