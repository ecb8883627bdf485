"""Press-1 to accept, end to end: the real Asterisk, sipp agents pressing keys as RFC 2833 DTMF
(tests/sipp/answer_press.xml plays sip-tester's dtmf_2833_<key>.pcap, payload type 101), and a
sipp "PSTN" visitor. A sequential group whose agents must press 1 within 3 s of the prompt.
The store's acceptances are what Asterisk's ChannelDtmfReceived events made of the keys."""

from __future__ import annotations

import pytest

from callengine.app import running
from callengine.flow import Answer, Strategy
from tests.support.engine import add_widget, make_config, submit_lead, wait_for_lead
from tests.support.phones import Phone, agent_port

pytestmark = pytest.mark.asterisk

ACCEPT = {"strategy": Strategy.SEQUENTIAL, "accept_digit": "1", "accept_timeout": 3,
          "ring_timeout": 10}


async def test_the_first_agent_presses_1_and_is_connected(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(agent_port(1), "answer_press", answer_after_ms=300, press="1") as alice, \
            Phone(agent_port(2), "answer", answer_after_ms=300) as bob, \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300,
                  hangup_after_ms=1500) as visitor:
        widget = await add_widget(service.store, agents=("agent1", "agent2"), **ACCEPT)
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=40)
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "connected", lead
    assert attempt.agent == "PJSIP/agent1" and attempt.connected
    accepted, = attempt.acceptances
    assert (accepted.agent, accepted.answer) == ("PJSIP/agent1", Answer.ACCEPTED)
    # answered at ~0.3 s, pressed 2.5 s after its ACK: the whisper and prompt heard by then
    assert attempt.agent_ring_s < accepted.at < attempt.agent_ring_s + 4
    assert alice.calls_answered == 1 and alice.count("pressed") == 1
    assert bob.calls_received == 0  # never needed
    assert visitor.calls_answered == 1 and 1 < attempt.talk_s < 4


async def test_an_agent_who_presses_nothing_makes_way_for_the_next(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(agent_port(1), "answer", answer_after_ms=300) as alice, \
            Phone(agent_port(2), "answer_press", answer_after_ms=300, press="1") as bob, \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300,
                  hangup_after_ms=1500) as visitor:
        widget = await add_widget(service.store, agents=("agent1", "agent2"), **ACCEPT)
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=60)
        attempt, = await service.store.attempts_for(lead_id)
        bob_called = [c.dialled for c in bob.calls()]
    assert lead.outcome == "connected", lead
    assert attempt.agent == "PJSIP/agent2"
    timed_out, accepted = attempt.acceptances
    assert (timed_out.agent, timed_out.answer) == ("PJSIP/agent1", Answer.TIMEOUT)
    assert (accepted.agent, accepted.answer) == ("PJSIP/agent2", Answer.ACCEPTED)
    assert timed_out.at + 0.3 < accepted.at
    # alice answered, heard the prompt, pressed nothing: hung up by us (a BYE) after ~3 s
    assert alice.calls_answered == 1 and alice.byes_received == 1
    assert len(bob_called) == 1 and bob.calls_answered == 1 and bob.count("pressed") == 1
    assert visitor.calls_answered == 1  # dialled only once bob accepted


async def test_a_wrong_key_declines_at_once(asterisk, tmp_path):
    async with running(make_config(tmp_path, asterisk)) as service, \
            Phone(agent_port(1), "answer_press", answer_after_ms=300, press="2") as alice, \
            Phone(agent_port(2), "answer_press", answer_after_ms=300, press="1") as bob, \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300,
                  hangup_after_ms=1500) as visitor:
        widget = await add_widget(service.store, agents=("agent1", "agent2"), **ACCEPT)
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=60)
        attempt, = await service.store.attempts_for(lead_id)
    assert lead.outcome == "connected" and attempt.agent == "PJSIP/agent2"
    wrong, accepted = attempt.acceptances
    assert (wrong.answer, wrong.digit, accepted.answer) == (Answer.WRONG_DIGIT, "2",
                                                            Answer.ACCEPTED)
    assert alice.byes_received == 1 and bob.calls_answered == 1
    assert visitor.calls_answered == 1
