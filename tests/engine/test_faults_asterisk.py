"""Faults against the real Asterisk: events websocket dropped, Asterisk restarted mid-ring and
mid-bridge, the engine killed mid-call, the engine restarted with leads pending.

After each test the clean_asterisk fixture asserts 0 channels and 0 bridges are left."""

from __future__ import annotations

import asyncio
import time

import pytest

from callengine.app import running
from callengine.storage import Store
from tests.support.engine import (
    DATA_KEY,
    EngineProcess,
    add_widget,
    make_config,
    submit_lead,
    wait_for_lead,
    config_port,
    free_port,
    wait_http,
    write_config,
)
from tests.support.phones import Phone
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.asterisk


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_websocket_drop_mid_bridge_reconciles_missed_hangup(asterisk, tmp_path):
    """The events websocket dies and stays down while the visitor hangs up; on reconnect the
    engine finds the visitor's channel gone, hangs up the agent and closes the lead."""
    async with TcpProxy("127.0.0.1", 8088) as proxy:
        config = make_config(tmp_path, asterisk, ari_url=f"http://127.0.0.1:{proxy.port}/ari")
        async with running(config) as service, \
                Phone(5081, "answer", tone_hz=440, answer_after_ms=200), \
                Phone(5070, "answer", tone_hz=1000, answer_after_ms=200,
                      hangup_after_ms=3000) as visitor:
            widget = await add_widget(service.store, agents=("agent1",), whisper=None)
            lead_id = await submit_lead(service.base_url, widget)
            await wait_for_lead(service.store, lead_id, status="calling", progress="connected")
            proxy.refusing = True
            proxy.drop()
            await asyncio.sleep(4)  # the visitor's BYE (at 3 s) happens while we are deaf
            assert (await service.store.get_lead(lead_id)).status == "calling"
            assert len(await asterisk.channels()) == 1  # the agent, still in the bridge
            proxy.refusing = False
            lead = await wait_for_lead(service.store, lead_id, timeout=20)
            attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "connected"
    assert visitor.calls_answered == 1
    assert attempt.talk_s is not None and attempt.talk_s > 3


async def test_websocket_drop_mid_ring_then_call_completes(asterisk, tmp_path):
    async with TcpProxy("127.0.0.1", 8088) as proxy:
        config = make_config(tmp_path, asterisk, ari_url=f"http://127.0.0.1:{proxy.port}/ari")
        async with running(config) as service, \
                Phone(5081, "answer", tone_hz=440, answer_after_ms=3000) as alice, \
                Phone(5070, "answer", tone_hz=1000, answer_after_ms=300, hangup_after_ms=1500):
            widget = await add_widget(service.store, agents=("agent1",), whisper=None,
                                      max_attempts=2, retry_delay_s=1)
            lead_id = await submit_lead(service.base_url, widget)
            await wait_for_lead(service.store, lead_id, status="calling",
                                progress="ringing-agents")
            await asyncio.sleep(0.5)
            proxy.refusing = True
            proxy.drop()
            # The agent answers while we are deaf: with no websocket our Stasis app is not
            # registered, so Asterisk hangs the answered channel up. The attempt can't be
            # judged; it is closed with the cause and the lead tried again.
            await asyncio.sleep(3.5)
            proxy.refusing = False
            lead = await wait_for_lead(service.store, lead_id, timeout=30)
            attempts = await service.store.attempts_for(lead_id)
    assert [a.outcome for a in attempts] == ["failed", "connected"]
    assert attempts[0].cause == "interrupted: ARI events lost"
    assert lead.outcome == "connected"
    assert alice.calls_answered == 2


async def test_asterisk_restart_mid_ring_retries_the_lead(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(5081, "ring_forever", tone_hz=440) as alice, \
            Phone(5070, "answer", tone_hz=1000) as visitor:
        widget = await add_widget(service.store, agents=("agent1",), ring_timeout=5,
                                  max_attempts=2, retry_delay_s=1)
        lead_id = await submit_lead(service.base_url, widget)
        await wait_for_lead(service.store, lead_id, status="calling", progress="ringing-agents")
        await wait_until(lambda: _ringing(alice), 10, "the agent's phone to ring")
        await asyncio.to_thread(asterisk.restart)
        lead = await wait_for_lead(service.store, lead_id, timeout=40)
        attempts = await service.store.attempts_for(lead_id)
    assert [a.outcome for a in attempts] == ["failed", "agents-no-answer"]
    # `core restart now` hangs every channel up first (soft-hangup flag "shutdown"):
    assert attempts[0].cause == "interrupted: Asterisk shut down"
    assert lead.status == "done" and lead.outcome == "agents-no-answer"
    assert alice.calls_received == 2 and visitor.calls_received == 0


async def test_asterisk_restart_mid_bridge_closes_the_lead(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(5081, "answer", tone_hz=440, answer_after_ms=200), \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=200) as visitor:
        widget = await add_widget(service.store, agents=("agent1",), max_attempts=3,
                                  retry_delay_s=1)
        lead_id = await submit_lead(service.base_url, widget)
        await wait_for_lead(service.store, lead_id, status="calling", progress="connected")
        await asyncio.sleep(1)
        await asyncio.to_thread(asterisk.restart)
        lead = await wait_for_lead(service.store, lead_id, timeout=30)
        attempts = await service.store.attempts_for(lead_id)
    assert lead.outcome == "failed" and lead.cause == "interrupted: Asterisk shut down"
    assert len(attempts) == 1  # the visitor talked to an agent already: no second call
    assert attempts[0].connected and attempts[0].talk_s >= 1
    assert visitor.calls_received == 1


async def test_engine_killed_mid_call_orphans_hung_up_and_lead_retried(asterisk, tmp_path):
    config_path, env = write_config(tmp_path, asterisk, port=free_port())
    engine = EngineProcess(config_path, env)
    async with Store.open(tmp_path / "callengine.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), ring_timeout=5, max_attempts=2,
                                  retry_delay_s=1)
    try:
        async with Phone(5081, "ring_forever", tone_hz=440) as alice, \
                Phone(5070, "answer", tone_hz=1000) as visitor:
            engine.start()
            base_url = f"http://127.0.0.1:{config_port(config_path)}"
            await wait_http(base_url)
            lead_id = await submit_lead(base_url, widget)
            async with Store.open(tmp_path / "callengine.db", DATA_KEY) as store:
                await wait_for_lead(store, lead_id, status="calling", progress="ringing-agents")
                await wait_until(lambda: _ringing(alice), 10, "the agent's phone to ring")
                engine.kill()
                await asyncio.sleep(1)
                orphans = await asterisk.channels()
                assert len(orphans) == 1, orphans  # the agent leg, left behind by the dead engine
                engine.start()
                lead = await wait_for_lead(store, lead_id, timeout=40)
                attempts = await store.attempts_for(lead_id)
    finally:
        engine.stop()
    assert [a.outcome for a in attempts] == ["failed", "agents-no-answer"], engine.log()
    assert attempts[0].cause == "interrupted: the engine restarted"
    assert "hanging up orphaned channel" in engine.log()
    assert lead.status == "done"
    assert alice.calls_received == 2 and visitor.calls_received == 0


async def test_engine_restart_picks_up_pending_leads(asterisk, tmp_path):
    """A lead taken while Asterisk is unreachable is stored and waits; the next engine calls it."""
    dead = make_config(tmp_path, asterisk, ari_url=f"http://127.0.0.1:{free_port()}/ari")
    async with running(dead) as service:
        widget = await add_widget(service.store, agents=("agent1",))
        lead_id = await submit_lead(service.base_url, widget)
        await asyncio.sleep(1)
        assert (await service.store.get_lead(lead_id)).status == "queued"
        assert not service.engine.ready.is_set()
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(5081, "answer", tone_hz=440, answer_after_ms=200), \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=200, hangup_after_ms=1000):
        lead = await wait_for_lead(service.store, lead_id, timeout=30)
    assert lead.outcome == "connected" and lead.attempts == 1


async def _ringing(phone: Phone) -> bool:
    return phone.calls_received >= 1
