"""Press-1 to accept in the driver, over the fake ARI: the agents not rung yet stay held while
the one who answered is only asked, the digit routed from DTMF stops the prompt and dials the
visitor, and the attempt keeps every answer. (End to end: test_accept_asterisk.py.)"""

from __future__ import annotations

import asyncio

import pytest

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Answer, Strategy
from callengine.storage import Store
from tests.support.engine import DATA_KEY, add_widget, poll, queue_lead
from tests.support.fake_ari import FakeAri


async def test_the_asked_agent_holds_the_next_and_the_digit_stops_the_prompt(tmp_path):
    ari = FakeAri()
    ari.play_finishes = False  # the prompt plays on until the digit stops it
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1", "agent2"),
                                  strategy=Strategy.SEQUENTIAL, whisper=None,
                                  accept_digit="1", accept_timeout=5)
        lead = await queue_lead(store, widget)
        engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2, poll_interval_s=0.05))
        task = asyncio.create_task(engine.run())
        try:
            play = await poll(lambda: _async(ari.requests("play")))
            _, agent1, media, playback_id = play[0]
            assert media == "sound:vm-press,sound:digits/1"
            # agent1 answered and is asked; agent2, not rung yet, is kept for this call
            assert engine.agent_activity() == {"PJSIP/agent1": "on-call",
                                               "PJSIP/agent2": "held"}
            ari.press(agent1, "1")
            await poll(lambda: _async(any("+48" in c[1] for c in ari.requests("originate"))))
            assert ("stop_playback", playback_id) in ari.calls
            assert engine.agent_activity() == {"PJSIP/agent1": "on-call"}  # agent2 free
            ari.far_end_hangs_up("+48")
            attempt = await poll(lambda: _done_attempt(store, lead.id))
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert attempt.agent == "PJSIP/agent1"
    assert [(a.agent, a.answer) for a in attempt.acceptances] == [
        ("PJSIP/agent1", Answer.ACCEPTED)]
    assert [c[1] for c in ari.requests("originate")][0] == "PJSIP/agent1"


async def _async(value):
    return value


async def _done_attempt(store: Store, lead_id: str):
    attempts = await store.attempts_for(lead_id)
    return attempts[0] if attempts and attempts[0].status == "done" else None
