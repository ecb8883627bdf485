"""Presence against the real Asterisk: agents whose phones register with a username and
password (agent7, agent8 in tests/asterisk-test/pjsip_test.conf, from the callengine-agent
templates) and sipp phones. An unregistered agent is skipped and a registered one rings and
takes the call; an agent on a call the engine did not make is skipped; a paused agent is
skipped, and the phone's *45 pauses and resumes it; after a websocket drop and after an
Asterisk restart the engine's view is Asterisk's again.

Measured here (Asterisk 22.10.1): a static contact with qualify off reads "online" (NonQual);
an endpoint with no contact "offline"; EndpointStateChange comes on every (un)registration and
on each channel's arrival and end (channel_ids); a registration survives `core restart now`
(kept in astdb)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import pytest

from callengine.app import running
from callengine.flow import Strategy
from tests.support.engine import add_widget, make_config, poll, submit_lead, wait_for_lead
from tests.support.phones import Phone, RegisteringPhone, agent_port, dial_feature_code
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.asterisk

PASSWORDS = {"agent7": "test-password-agent7", "agent8": "test-password-agent8"}
SEQUENTIAL = dict(strategy=Strategy.SEQUENTIAL, ring_timeout=5, whisper=None,
                  max_numbers_per_client_per_hour=100, max_numbers_per_client_per_day=100)


def phone(name: str, **kw) -> RegisteringPhone:
    return RegisteringPhone(agent_port(int(name[-1])), name, PASSWORDS[name],
                            answer_after_ms=300, **kw)


async def endpoint_state(asterisk, name: str) -> str:
    status, body = await asterisk.ari("GET", f"/endpoints/PJSIP/{name}")
    assert status == 200, body
    return body["state"]


async def presence_is(engine, endpoint: str, state: str, timeout: float = 10) -> None:
    async def check():
        return engine.presence.state(endpoint) == state
    await poll(check, timeout)


@contextlib.asynccontextmanager
async def registered(asterisk, name: str):
    """The agent's phone registered for the block; unregistered after it (a registration
    outlives the test otherwise: Asterisk keeps it in astdb)."""
    device = phone(name)
    await device.astart()
    try:
        await device.registered()
        yield device
    finally:
        await asyncio.to_thread(device.unregister)


def originated(caplog) -> list[str]:
    return [r.getMessage().rsplit("(", 1)[1].rstrip(")") for r in caplog.records
            if r.getMessage().startswith(("[lead", )) and " originated agent:" in r.getMessage()]


async def one_call(service, widget, number: str) -> tuple:
    lead_id = await submit_lead(service.base_url, widget, number)
    lead = await wait_for_lead(service.store, lead_id, timeout=40)
    attempt, = await service.store.attempts_for(lead_id)
    return lead, attempt


async def test_an_unregistered_agent_is_skipped_and_a_registered_one_rings(asterisk, tmp_path,
                                                                           caplog):
    caplog.set_level(logging.INFO, logger="callengine")
    assert await endpoint_state(asterisk, "agent7") == "offline"
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300, hangup_after_ms=2500):
        # agent7 first in the order: rung first, were it not offline
        widget = await add_widget(service.store, agents=("agent7", "agent8"), **SEQUENTIAL)
        async with registered(asterisk, "agent8") as agent8:
            assert await endpoint_state(asterisk, "agent8") == "online"
            await presence_is(service.engine, "PJSIP/agent8", "free")
            assert service.engine.presence.state("PJSIP/agent7") == "offline"
            lead, attempt = await one_call(service, widget, "+48601234500")
            assert lead.outcome == "connected" and attempt.agent == "PJSIP/agent8"
            assert attempt.talk_s is not None and attempt.talk_s > 1.5
            assert agent8.calls_answered == 1 and agent8.byes_received == 1
            assert originated(caplog) == ["PJSIP/agent8"]  # agent7 never rung

            # agent7's phone registers: it rings (first in the order) and takes the call
            async with registered(asterisk, "agent7") as agent7:
                await presence_is(service.engine, "PJSIP/agent7", "free")
                lead, attempt = await one_call(service, widget, "+48601234501")
                assert lead.outcome == "connected" and attempt.agent == "PJSIP/agent7"
                assert agent7.calls_answered == 1
            await presence_is(service.engine, "PJSIP/agent7", "offline")
    assert originated(caplog) == ["PJSIP/agent8", "PJSIP/agent7"]


async def test_an_agent_on_a_call_the_engine_did_not_make_is_skipped(asterisk, tmp_path, caplog):
    """A call to agent1 someone else placed (an ARI app of theirs, as a PBX's own Dial would):
    agent1 reads busy-elsewhere while it lasts, and the lead rings agent2; once it ends the
    next lead rings agent1 again."""
    caplog.set_level(logging.INFO, logger="callengine")
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(agent_port(1), "answer", answer_after_ms=200), \
            Phone(agent_port(2), "answer", answer_after_ms=200), \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300, hangup_after_ms=1500), \
            aiohttp.ClientSession(headers=asterisk.auth_header()) as session:
        widget = await add_widget(service.store, agents=("agent1", "agent2"), **SEQUENTIAL)
        ws = await session.ws_connect(asterisk.ari_ws_url, params={"app": "someone-else"})
        try:
            status, body = await asterisk.ari("POST", "/channels", endpoint="PJSIP/agent1",
                                              app="someone-else", channelId="other-call-1")
            assert status == 200, body
            await presence_is(service.engine, "PJSIP/agent1", "busy-elsewhere")
            # (the test Asterisk's other endpoints, the queue's caller one, are reported too)
            agents = {endpoint: state for endpoint, state in service.engine.agent_activity().items()
                      if endpoint.startswith("PJSIP/agent")}
            assert agents == {"PJSIP/agent1": "busy-elsewhere", "PJSIP/agent7": "offline",
                              "PJSIP/agent8": "offline"}
            lead, attempt = await one_call(service, widget, "+48601234510")
            assert lead.outcome == "connected" and attempt.agent == "PJSIP/agent2"
            assert originated(caplog) == ["PJSIP/agent2"]
        finally:
            await asterisk.ari("DELETE", "/channels/other-call-1")
            await ws.close()
        await presence_is(service.engine, "PJSIP/agent1", "free")
        lead, attempt = await one_call(service, widget, "+48601234511")
        assert attempt.agent == "PJSIP/agent1"


async def test_a_paused_agent_is_skipped_and_the_phone_pauses_and_resumes_itself(
        asterisk, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="callengine")
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(agent_port(1), "answer", answer_after_ms=200), \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300, hangup_after_ms=1500):
        widget = await add_widget(service.store, agents=("agent7", "agent1"), **SEQUENTIAL)
        async with registered(asterisk, "agent7") as agent7:
            await presence_is(service.engine, "PJSIP/agent7", "free")
            # agent7 dials *45 from the phone: paused (it hears "agent logged off")
            await asyncio.to_thread(dial_feature_code, "agent7", PASSWORDS["agent7"], "*45",
                                    port=5097)
            agents = {a.name: a for a in await service.store.list_agents()}
            assert agents["agent7"].paused
            lead, attempt = await one_call(service, widget, "+48601234520")
            assert attempt.agent == "PJSIP/agent1" and agent7.calls_received == 0
            # *45 again: resumed, and the next lead rings agent7 first
            await asyncio.to_thread(dial_feature_code, "agent7", PASSWORDS["agent7"], "*45",
                                    port=5097)
            assert not {a.name: a for a in await service.store.list_agents()}["agent7"].paused
            await presence_is(service.engine, "PJSIP/agent7", "free")
            lead, attempt = await one_call(service, widget, "+48601234521")
            assert attempt.agent == "PJSIP/agent7" and agent7.calls_answered == 1
        entries = [(e.action, e.actor) for e in await service.store.audit_entries()
                   if e.action in ("config.agent.pause", "config.agent.resume")]
    assert entries == [("config.agent.pause", "phone:PJSIP/agent7"),
                       ("config.agent.resume", "phone:PJSIP/agent7")]
    sounds = [r.getMessage() for r in caplog.records if "from the phone" in r.getMessage()]
    assert [s.split("] ", 1)[1] for s in sounds] == ["agent agent7 paused from the phone",
                                                     "agent agent7 resumed from the phone"]


async def test_the_view_is_rebuilt_after_a_websocket_drop_and_a_restart(asterisk, tmp_path):
    """While the engine is deaf, agent8's phone unregisters and agent7's registers: after the
    reconnect the engine rings agent7, not agent8. Then Asterisk restarts: the registration
    survives it (astdb), and the view read after the restart says so."""
    async with TcpProxy("127.0.0.1", 8088) as proxy:
        config = make_config(tmp_path, asterisk, ari_url=f"http://127.0.0.1:{proxy.port}/ari")
        async with running(config) as service, \
                Phone(5070, "answer", tone_hz=1000, answer_after_ms=300, hangup_after_ms=1500):
            widget = await add_widget(service.store, agents=("agent8", "agent7"), **SEQUENTIAL)
            agent8 = phone("agent8")
            await agent8.astart()
            agent7 = phone("agent7")
            try:
                await agent8.registered()
                await presence_is(service.engine, "PJSIP/agent8", "free")
                proxy.refusing = True
                proxy.drop()
                await poll(_async_not(service.engine.ready.is_set), 10)
                await asyncio.to_thread(agent8.unregister)
                await agent7.astart()
                await agent7.registered()
                await asyncio.sleep(0.5)
                assert service.engine.presence.state("PJSIP/agent8") == "free"  # stale, deaf
                proxy.refusing = False
                await asyncio.wait_for(service.engine.ready.wait(), 20)
                assert service.engine.presence.state("PJSIP/agent8") == "offline"
                assert service.engine.presence.state("PJSIP/agent7") == "free"
                lead, attempt = await one_call(service, widget, "+48601234530")
                assert attempt.agent == "PJSIP/agent7" and agent8.calls_received == 0

                before = dict(service.engine._asterisk_started)  # node → startup time
                await asyncio.to_thread(asterisk.restart)

                async def reconnected() -> bool:
                    engine = service.engine
                    return engine.ready.is_set() and engine._asterisk_started != before
                await poll(reconnected, 30)
                assert await endpoint_state(asterisk, "agent7") == "online"
                assert service.engine.presence.state("PJSIP/agent7") == "free"
                assert service.engine.presence.state("PJSIP/agent8") == "offline"
                lead, attempt = await one_call(service, widget, "+48601234531")
                assert attempt.agent == "PJSIP/agent7" and agent7.calls_answered == 2
            finally:
                agent8.stop()
                await asyncio.to_thread(agent7.unregister)


def _async_not(predicate):
    async def check():
        return not predicate()
    return check


