"""Queue callback, end to end: the real Asterisk's app_queue (tests/asterisk-test/queues.conf:
queue "support", one member, the sipp phone behind PJSIP/queue-agent, paused at start so
callers wait), sipp callers dialling it (tests/sipp/queue_caller.xml, RFC 2833 digits), the
engine, and a sipp "PSTN" visitor.

Three callers wait: B, then A, then C. A presses 1, confirms their caller ID with 1 and hangs
up; the engine's placeholder takes A's place in line (between B and C, as `queue show` lists
them); the member is unpaused: B is served first, then the callback (the member hears the
whisper, A's number is dialled and bridged), while C still waits behind it."""

from __future__ import annotations

import asyncio
import re

import pytest

from callengine.app import running
from tests.support.engine import VISITOR, add_widget, make_config, poll, wait_for_lead
from tests.support.phones import Phone
from tests.support.queue_callers import QueueCaller

pytestmark = pytest.mark.asterisk

QUEUE = "support"
MEMBER = "PJSIP/queue-agent"


async def waiting(asterisk) -> list[str]:
    """The channels waiting in the queue, in their order (`queue show`)."""
    out = await asyncio.to_thread(asterisk.cli, f"queue show {QUEUE}")
    return re.findall(r"^\s+\d+\. (\S+)", out.split("Callers:")[-1], re.M) if "Callers:" in out else []


def waiting_count(asterisk, count: int):
    """For poll: the waiting channels once there are `count` of them (True for none)."""
    async def check():
        order = await waiting(asterisk)
        return (order or True) if len(order) == count else None
    return check


async def hang_up_callers(asterisk, callers) -> None:
    """The test's callers still waiting are hung up in Asterisk (a stopped sipp sends no BYE)."""
    for name in await waiting(asterisk):
        if name.startswith("PJSIP/queue-caller-"):
            await asyncio.to_thread(asterisk.cli, f"channel request hangup {name}")
    for caller in callers:
        caller.stop()
    await asyncio.to_thread(asterisk.cli, f"queue unpause member {MEMBER}")


async def no_channels(asterisk) -> bool:
    return "0 active channels" in await asyncio.to_thread(asterisk.cli, "core show channels")


async def lead_of(store, widget_id: str):
    leads = await store.list_leads()
    return next((lead for lead in leads if lead.widget_id == widget_id), None)


async def test_a_caller_who_presses_1_is_called_back_in_their_place(asterisk, tmp_path):
    asterisk.cli(f"queue pause member {MEMBER}")  # callers wait until the test lets them on
    config = make_config(tmp_path, asterisk)
    async with running(config) as service, Phone(5091, "answer", answer_after_ms=200,
                                                  hangup_after_ms=2500) as member, \
            Phone(5070, "answer", tone_hz=1000, answer_after_ms=300,
                  hangup_after_ms=1500) as visitor:
        widget = await add_widget(service.store, widget_id="queue", queue=QUEUE,
                                  whisper="sound:beep")
        b = QueueCaller(QUEUE, "+48601234500", hold_ms=60000).start()
        await b.wait_for("answered")
        await asyncio.sleep(0.2)
        # A: pressed 1 in the queue after 1.5 s; confirms the caller ID with 1 during the question
        a = QueueCaller(QUEUE, VISITOR, keys=[1500, "1", 2500, "1"], hold_ms=60000).start()
        await a.wait_for("answered")
        await asyncio.sleep(0.2)
        c = QueueCaller(QUEUE, "+48601234511", hold_ms=60000).start()
        await c.wait_for("answered")
        try:
            lead = await poll(lambda: lead_of(service.store, widget.id), timeout=30)
            await a.wait_for("bye_received", timeout=15)  # thanked and hung up by the engine
            assert lead.phone_e164 == VISITOR and lead.consent.clause_version == "queue-ivr-1"
            callback, = (await service.store.queue_callbacks([lead.id])).values()
            assert callback["queue"] == QUEUE
            pressed = [(s["key"], s["for"]) for s in callback["evidence"]["steps"] if "key" in s]
            assert pressed == [("1", "callback"), ("1", "confirm-number")]
            assert VISITOR.lstrip("+") not in str(callback["evidence"])  # no number in it

            # The placeholder waits where A waited: after B, ahead of C.
            order = await poll(waiting_count(asterisk, 3), timeout=15)
            assert order[0].startswith("PJSIP/queue-caller-"), order
            assert order[1].startswith(f"Local/{callback['joined_at']:.3f}-{QUEUE}@"), order
            assert order[2].startswith("PJSIP/queue-caller-"), order

            asterisk.cli(f"queue unpause member {MEMBER}")
            await b.wait_for("bye_received", timeout=20)  # B served first, then hung up
            await wait_for_lead(service.store, lead.id, status="calling", progress="connected",
                                timeout=30)
            behind = await waiting(asterisk)  # C, still behind the callback
            assert len(behind) == 1 and behind[0] == order[2], behind
            done = await wait_for_lead(service.store, lead.id, timeout=60)
            assert done.outcome == "connected", done
            attempt, = await service.store.attempts_for(lead.id)
            assert attempt.agent.startswith("Local/") and attempt.connected
            assert visitor.calls_answered == 1
            assert member.calls_answered == 2  # B, then the callback
        finally:
            await hang_up_callers(asterisk, (a, b, c))
    assert await poll(lambda: no_channels(asterisk), timeout=10)  # the engine left nothing


async def test_a_number_refused_by_the_policy_sends_the_caller_back_in_line(asterisk, tmp_path):
    asterisk.cli(f"queue pause member {MEMBER}")
    async with running(make_config(tmp_path, asterisk)) as service:
        widget = await add_widget(service.store, widget_id="queue", queue=QUEUE,
                                  allowed_regions=["DE"])  # a Polish number may not be called
        a = QueueCaller(QUEUE, VISITOR, keys=[1500, "1"], hold_ms=60000).start()
        try:
            await a.wait_for("answered")
            await poll(waiting_count(asterisk, 1), timeout=10)
            await poll(waiting_count(asterisk, 0), timeout=10)  # pressed 1: left the queue
            # refused caller ID → asked to type one; nothing typed, twice → back in line
            order = await poll(waiting_count(asterisk, 1), timeout=60)
            assert order[0].startswith("PJSIP/queue-caller-"), order
            assert a.count("bye_received") == 0  # still on the line, waiting again
            assert await service.store.list_leads() == []
            assert widget.settings.queue == QUEUE
        finally:
            await hang_up_callers(asterisk, (a,))
    assert await poll(lambda: no_channels(asterisk), timeout=10)
