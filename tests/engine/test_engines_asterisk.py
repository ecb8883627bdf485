"""Two engines on one real Asterisk: each names its channels and bridges ce-<engine id>-…, so
one starting up (and reconciling: every channel of its own left from before is an orphan)
leaves the other's call alone, and sees the agent on it as busy on another's call."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from callengine.app import running
from tests.support.engine import add_widget, make_config, poll, submit_lead, wait_for_lead
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
