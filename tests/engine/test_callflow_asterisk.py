"""The callback call flow end to end: real Asterisk, real SIP legs (sipp phones), real audio.

Agents are sipp phones on 5081… (PJSIP/agent1…), the "PSTN" is a sipp on 5070 behind the `pstn`
trunk. Every test ends with 0 channels and 0 bridges in Asterisk (the clean_asterisk fixture)."""

from __future__ import annotations

import pytest

from callengine.app import running
from callengine.flow import Strategy
from tests.support.engine import add_widget, make_config, submit_lead, wait_for_lead
from tests.support.phones import Phone

pytestmark = pytest.mark.asterisk

AGENT_TONE = 440
VISITOR_TONE = 1000


def agent(port: int, scenario: str = "answer", **kw) -> Phone:
    return Phone(port, scenario, tone_hz=AGENT_TONE, **kw)


def pstn(scenario: str = "answer", **kw) -> Phone:
    return Phone(5070, scenario, tone_hz=VISITOR_TONE, **kw)


async def test_connected_call_visitor_hangs_up(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, answer_after_ms=500) as alice, \
            pstn(answer_after_ms=1000, hangup_after_ms=3000) as visitor:
        widget = await add_widget(service.store, agents=("agent1",))
        lead_id = await submit_lead(service.base_url, widget)
        connected = await wait_for_lead(service.store, lead_id, status="calling",
                                        progress="connected", timeout=20)
        assert connected.progress == "connected"
        lead = await wait_for_lead(service.store, lead_id, timeout=30)
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "connected"
    assert attempt.agent == "PJSIP/agent1"
    assert 0.3 < attempt.agent_ring_s < 5
    assert 0.8 < attempt.visitor_ring_s < 5
    assert 2.5 < attempt.talk_s < 5
    assert attempt.q850 == 16  # the visitor's BYE: normal clearing
    assert alice.calls_answered == 1 and visitor.calls_answered == 1


async def test_agent_hangs_up_first(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, answer_after_ms=200, hangup_after_ms=4000) as alice, \
            pstn(answer_after_ms=300) as visitor:
        widget = await add_widget(service.store, agents=("agent1",), whisper=None)
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=30)
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "connected"
    assert 2 < attempt.talk_s < 5
    assert visitor.calls_answered == 1 and alice.calls_answered == 1


async def test_ring_all_first_answer_wins_others_cancelled(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, "ring_forever") as alice, \
            agent(5082, answer_after_ms=800) as bob, \
            agent(5083, "ring_forever") as carol, \
            pstn(answer_after_ms=300, hangup_after_ms=1500):
        widget = await add_widget(service.store, agents=("agent1", "agent2", "agent3"))
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=30)
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "connected" and attempt.agent == "PJSIP/agent2"
    assert alice.calls_received == 1 and carol.calls_received == 1  # all rang at once …
    assert alice.calls_cancelled == 1 and carol.calls_cancelled == 1  # … and the losers were cancelled
    assert bob.calls_answered == 1


async def test_sequential_rings_one_after_another(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, "busy") as alice, \
            agent(5082, "ring_forever") as bob, \
            agent(5083, answer_after_ms=300) as carol, \
            pstn(answer_after_ms=300, hangup_after_ms=1000):
        widget = await add_widget(service.store, agents=("agent1", "agent2", "agent3"),
                                  strategy=Strategy.SEQUENTIAL, ring_timeout=5)
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=40)
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "connected" and attempt.agent == "PJSIP/agent3"
    assert alice.calls_received == 1 and bob.calls_received == 1 and carol.calls_answered == 1
    # bob rang for his full ring timeout before carol was tried
    assert attempt.agent_ring_s > 5


async def test_agents_no_answer_never_dials_visitor(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, "ring_forever") as alice, agent(5082, "unavailable"), \
            pstn() as visitor:
        widget = await add_widget(service.store, agents=("agent1", "agent2"), ring_timeout=5)
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=30)
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "agents-no-answer" and lead.status == "done"
    assert attempt.q850 in (19, 480)
    assert alice.calls_received == 1
    assert visitor.calls_received == 0  # the visitor is never dialled unless an agent is on the line


async def test_agents_busy(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, "busy"), agent(5082, "busy"), pstn() as visitor:
        widget = await add_widget(service.store, agents=("agent1", "agent2"))
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=20)
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "agents-busy" and attempt.q850 == 17
    assert visitor.calls_received == 0


@pytest.mark.parametrize(
    "scenario, outcome, q850",
    [("busy", "visitor-busy", 17), ("ring_forever", "visitor-no-answer", 19),
     (None, "visitor-unreachable", 19)],
)
async def test_visitor_outcomes(asterisk, tmp_path, scenario, outcome, q850):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, answer_after_ms=200) as alice:
        if scenario is None:  # nothing listens on the trunk: no Ringing, then 19 at the timeout
            widget = await add_widget(service.store, agents=("agent1",), visitor_ring_timeout=5,
                                      visitor_endpoint="PJSIP/{number}@pstn-void")
            lead_id = await submit_lead(service.base_url, widget)
            lead = await wait_for_lead(service.store, lead_id, timeout=30)
        else:
            widget = await add_widget(service.store, agents=("agent1",), visitor_ring_timeout=5)
            async with pstn(scenario) as visitor:
                lead_id = await submit_lead(service.base_url, widget)
                lead = await wait_for_lead(service.store, lead_id, timeout=30)
            assert visitor.calls_received == 1 and visitor.calls_answered == 0
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == outcome, lead
    assert attempt.q850 == q850
    assert attempt.agent == "PJSIP/agent1" and alice.calls_answered == 1


async def test_failed_when_no_agent_can_be_called(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, pstn() as visitor:
        from callengine.model import Agent

        await service.store.add_agent(Agent("ghost", "PJSIP/no-such-endpoint"))
        widget = await add_widget(service.store, agents=("ghost",))
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=20)
    assert lead.outcome == "failed"
    assert "originate failed" in lead.cause
    assert visitor.calls_received == 0


async def test_failed_when_agent_hangs_up_while_visitor_rings(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, answer_after_ms=200, hangup_after_ms=2000), \
            pstn("ring_forever") as visitor:
        widget = await add_widget(service.store, agents=("agent1",), whisper=None,
                                  visitor_ring_timeout=20)
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=20)
    assert lead.outcome == "failed"
    assert lead.cause == "the agent hung up before the call was bridged"
    assert visitor.calls_received == 1 and visitor.calls_cancelled == 1, visitor.calls()


async def test_retry_after_agents_no_answer(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            agent(5081, "busy") as alice, pstn() as visitor:
        widget = await add_widget(service.store, agents=("agent1",), max_attempts=2,
                                  retry_delay_s=1)
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=30)
        attempts = await service.store.attempts_for(lead_id)
    assert [a.outcome for a in attempts] == ["agents-busy", "agents-busy"]
    assert lead.attempts == 2 and lead.status == "done"
    assert attempts[1].started_at - attempts[0].ended_at >= 0.9
    assert alice.calls_received == 2 and visitor.calls_received == 0
