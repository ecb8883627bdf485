"""Two engines on one real Asterisk: each names its channels and bridges ce-<engine id>-…, so
one starting up (and reconciling: every channel of its own left from before is an orphan)
leaves the other's call alone, and sees the agent on it as busy on another's call; one killed
mid-call is taken over by the other once its lease has run out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from callengine.app import running
from callengine.storage import Store
from tests.support.engine import (
    DATA_KEY, EngineProcess, add_widget, config_port, free_port, make_config, poll, submit_lead,
    wait_for_lead, wait_http, write_config,
)
from tests.support.phones import Phone, agent_port

pytestmark = pytest.mark.asterisk


def engine_config(tmp_path, asterisk, engine_id: str):
    (tmp_path / engine_id).mkdir()
    config = make_config(tmp_path / engine_id, asterisk)
    return replace(config, dialing=replace(config.dialing, engine_id=engine_id),
                   ari=replace(config.ari, app=f"callengine-{engine_id}"))


async def test_an_engine_starting_leaves_another_engines_call_alone(asterisk, tmp_path):
    async with running(engine_config(tmp_path, asterisk, "a")) as a, \
            Phone(agent_port(1), "answer", answer_after_ms=200), \
            Phone(5070, "answer", answer_after_ms=300, hangup_after_ms=6000) as visitor:
        widget = await add_widget(a.store, agents=("agent1",))
        lead_id = await submit_lead(a.base_url, widget)
        await wait_for_lead(a.store, lead_id, status="calling", progress="connected",
                            timeout=30)
        status, channels = await asterisk.ari("GET", "/channels")
        ours = [c["id"] for c in channels if c["id"].startswith("ce-")]
        assert status == 200 and len(ours) == 2 and all(i.startswith("ce-a-") for i in ours)

        async with running(engine_config(tmp_path, asterisk, "b")) as b:
            await asyncio.wait_for(b.engine.ready.wait(), 10)  # connected and reconciled

            async def busy():
                return b.engine.presence.state("PJSIP/agent1") == "busy-elsewhere"
            assert await poll(busy, timeout=10)  # a's call, not b's: agent1 is taken
            assert (await a.store.get_lead(lead_id)).progress == "connected"

        lead = await wait_for_lead(a.store, lead_id, timeout=30)
        attempt, = await a.store.attempts_for(lead_id)
    assert lead.outcome == "connected", lead
    assert attempt.talk_s > 4  # the visitor hung up after 6 s: b hung up nothing
    assert visitor.calls_answered == 1 and visitor.count("bye_sent") == 1


async def test_an_engine_killed_mid_call_is_taken_over_by_another(asterisk, tmp_path):
    """Engines a and b as processes on one store: a is SIGKILLed while an agent rings for its
    lead. Once a's lease (3 s) has run out, b hangs up a's channel, closes a's attempt and
    dials the lead again: the lead ends once, nothing is left on Asterisk."""
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    engines = {}
    for engine_id in ("a", "b"):
        (tmp_path / engine_id).mkdir()
        config_path, env = write_config(tmp_path / engine_id, asterisk, port=free_port(),
                                        engine_id=engine_id, store_dir=store_dir)
        engines[engine_id] = (EngineProcess(config_path, env), config_path)
    (a, a_config), (b, b_config) = engines["a"], engines["b"]
    def open_store():
        return Store.open(store_dir / "callengine.db", DATA_KEY,
                          keystore=store_dir / "keystore/keystore.db")

    async with open_store() as store:
        # (a ring timeout well past the takeover: Asterisk's own end of the ringing must not
        # come first, or there would be no channel left for b to hang up)
        widget = await add_widget(store, agents=("agent1",), ring_timeout=12, max_attempts=2,
                                  retry_delay_s=1)
    try:
        async with Phone(agent_port(1), "ring_forever", tone_hz=440) as agent, \
                Phone(5070, "answer", tone_hz=1000) as visitor:
            a.start()
            a_url = f"http://127.0.0.1:{config_port(a_config)}"
            await wait_http(a_url)
            lead_id = await submit_lead(a_url, widget)
            async with open_store() as store:  # (opened after: it sees a's journaled lead)
                await wait_for_lead(store, lead_id, status="calling", progress="ringing-agents")
                assert await poll(lambda: _rang(agent, 1), timeout=10)
                b.start()
                await wait_http(f"http://127.0.0.1:{config_port(b_config)}")
                a.kill()
                killed_at = time.time()
                lead = await wait_for_lead(store, lead_id, timeout=40)
                first, second = await store.attempts_for(lead_id)
    finally:
        a.stop()
        b.stop()
    assert (first.engine, second.engine) == ("a", "b"), b.log()
    assert first.cause == "interrupted: engine a stopped" and first.outcome == "failed"
    assert killed_at < first.ended_at < killed_at + 2 * 3 + 2  # within the lease, b's rounds
    assert second.outcome == "agents-no-answer" and lead.status == "done"
    took = [line for line in b.log().splitlines() if "taking them over" in line]
    assert len(took) == 1 and "; 1 channel(s) hung up" in took[0], took
    assert agent.calls_received == 2 and visitor.calls_received == 0


async def _rang(phone: Phone, times: int) -> bool:
    return phone.calls_received >= times
