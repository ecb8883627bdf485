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


async def call_through(asterisk, tmp_path, alice: Phone, bob: Phone, **group):
    """One lead through a group of agent1 (alice) and agent2 (bob), a visitor answering and
    hanging up 1.5 s later: the lead as it ended, its one attempt, and bob's calls."""
    async with running(make_config(tmp_path, asterisk)) as service, alice, bob, \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300,
                  hangup_after_ms=1500) as visitor:
        widget = await add_widget(service.store, agents=("agent1", "agent2"),
                                  **{**ACCEPT, **group})
        lead_id = await submit_lead(service.base_url, widget)
        lead = await wait_for_lead(service.store, lead_id, timeout=60)
        attempt, = await service.store.attempts_for(lead_id)
    assert visitor.calls_answered == 1  # dialled once, when an agent had accepted
    return lead, attempt


def answers(attempt) -> list[tuple[str, Answer]]:
    return [(a.agent, a.answer) for a in attempt.acceptances]


async def test_the_first_agent_presses_1_and_is_connected(asterisk, tmp_path):
    alice = Phone(agent_port(1), "answer_press", answer_after_ms=300, press="1")
    bob = Phone(agent_port(2), "answer", answer_after_ms=300)
    lead, attempt = await call_through(asterisk, tmp_path, alice, bob)
    assert lead.outcome == "connected", lead
    assert attempt.agent == "PJSIP/agent1" and attempt.connected
    assert answers(attempt) == [("PJSIP/agent1", Answer.ACCEPTED)]
    # answered at ~0.3 s, pressed 2.5 s after its ACK: the whisper and prompt heard by then
    assert attempt.agent_ring_s < attempt.acceptances[0].at < attempt.agent_ring_s + 4
    assert alice.calls_answered == 1 and alice.count("pressed") == 1
    assert bob.calls_received == 0  # never needed
    assert 1 < attempt.talk_s < 4


async def test_an_agent_who_presses_nothing_makes_way_for_the_next(asterisk, tmp_path):
    alice = Phone(agent_port(1), "answer", answer_after_ms=300)
    bob = Phone(agent_port(2), "answer_press", answer_after_ms=300, press="1")
    lead, attempt = await call_through(asterisk, tmp_path, alice, bob)
    assert lead.outcome == "connected", lead
    assert attempt.agent == "PJSIP/agent2"
    assert answers(attempt) == [("PJSIP/agent1", Answer.TIMEOUT),
                                ("PJSIP/agent2", Answer.ACCEPTED)]
    # alice answered, heard the prompt, pressed nothing: hung up by us (a BYE) after 3 s;
    # only then did bob ring
    assert alice.calls_answered == 1 and alice.byes_received == 1
    assert bob.calls_received == 1 and bob.calls_answered == 1 and bob.count("pressed") == 1
    timed_out, accepted = attempt.acceptances
    assert timed_out.at + 0.3 < accepted.at


async def test_a_wrong_key_declines_at_once(asterisk, tmp_path):
    alice = Phone(agent_port(1), "answer_press", answer_after_ms=300, press="2")
    bob = Phone(agent_port(2), "answer_press", answer_after_ms=300, press="1")
    lead, attempt = await call_through(asterisk, tmp_path, alice, bob)
    assert lead.outcome == "connected" and attempt.agent == "PJSIP/agent2"
    wrong, accepted = attempt.acceptances
    assert (wrong.answer, wrong.digit, accepted.answer) == (Answer.WRONG_DIGIT, "2",
                                                            Answer.ACCEPTED)
    assert alice.byes_received == 1 and bob.calls_answered == 1


async def test_ring_all_rings_the_others_on_while_one_is_asked(asterisk, tmp_path):
    """alice answers first and presses nothing; bob, still ringing all along, answers once she
    was given up on (~5 s: whisper, prompt, 3 s), is asked and presses 1."""
    alice = Phone(agent_port(1), "answer", answer_after_ms=300)
    bob = Phone(agent_port(2), "answer_press", answer_after_ms=8000, press="1")
    lead, attempt = await call_through(asterisk, tmp_path, alice, bob,
                                       strategy=Strategy.RING_ALL, ring_timeout=15)
    assert lead.outcome == "connected" and attempt.agent == "PJSIP/agent2"
    assert answers(attempt) == [("PJSIP/agent1", Answer.TIMEOUT),
                                ("PJSIP/agent2", Answer.ACCEPTED)]
    assert bob.calls_received == 1 and bob.calls_cancelled == 0  # rung once, never cut
    assert alice.byes_received == 1
