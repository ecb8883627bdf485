"""Webhooks of real calls (the real Asterisk, sipp phones, a recorded call) received by two
local CRMs that verify every signature with the standardwebhooks library: one endpoint takes
masked numbers, the other full ones (each such delivery audited). The masked one's receiver is
down (connection refused) while a second call and an erasure happen; back up, with the app's
clock moved past the backoff instead of waiting it out, it gets everything it missed: each event
once per endpoint by webhook-id, in event order."""

from __future__ import annotations

import time

import aiohttp
import pytest

from callengine.app import Running, running
from callengine.hooks import events
from callengine.numbers import mask
from tests.hooks.test_delivery import Receiver, free_port, listening
from tests.support.engine import (
    ADMIN_TOKEN, VISITOR, add_widget, make_config, poll, submit_lead, wait_for_lead,
)
from tests.support.phones import Phone
from tests.support.recordings import NOTICE, recipient_keys, recording_notice

pytestmark = pytest.mark.asterisk

SECOND = "+48601234568"  # the second call's visitor (the "PSTN" sipp answers any number)
LEAD_EVENTS = {events.LEAD_CREATED, events.CALL_CONNECTED, events.ATTEMPT_FINISHED,
               events.LEAD_DONE, events.RECORDING_READY}


class SkewClock:
    """The wall clock, moved on by `skew` seconds when the test says so."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


async def api(service: Running, method: str, path: str, body: dict | None = None) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, service.base_url + path, json=body, headers={
                "Authorization": f"Bearer {ADMIN_TOKEN}"}) as response:
            assert response.status < 300, await response.text()
            return await response.json()


def arrived(receiver: Receiver) -> list[dict]:
    """Each event the receiver took, in the order they first arrived (a dict keeps it)."""
    return [got[0] | {"id": msg_id} for msg_id, got in receiver.received.items()]


def before(types: list[str], first: str, then: str) -> bool:
    return types.index(first) < types.index(then)


async def test_real_calls_webhooks_verified_and_delivered_after_the_receiver_was_down(
        asterisk, tmp_path):
    private, public_file = recipient_keys(tmp_path)
    recording_notice(asterisk, tmp_path)
    clock = SkewClock()
    config = make_config(tmp_path, asterisk, public_key_file=public_file)
    masked_port, full_port = free_port(), free_port()
    async with running(config, clock=clock) as service, \
            Phone(5081, "answer", answer_after_ms=200):
        masked = await api(service, "POST", "/api/v1/webhooks",
                           {"url": f"http://127.0.0.1:{masked_port}/hook"})
        full = await api(service, "POST", "/api/v1/webhooks",
                         {"url": f"http://127.0.0.1:{full_port}/hook", "full_numbers": True})
        crm, audited = Receiver([masked["secret"]]), Receiver([full["secret"]])
        widget = await add_widget(service.store, recording="on", recording_notice=NOTICE,
                                  whisper=None, max_numbers_per_client_per_hour=100,
                                  max_numbers_per_client_per_day=100)

        async def received(receiver: Receiver, count: int):
            return len(receiver.received) == count

        async with listening(audited, full_port):
            async with listening(crm, masked_port):
                async with Phone(5070, "answer", tone_hz=1000, answer_after_ms=300,
                                 hangup_after_ms=3000):
                    first = await submit_lead(service.base_url, widget, recording_consent=True)
                    await wait_for_lead(service.store, first, timeout=40)
                recording, = await service.store.list_recordings(lead_id=first)
                await poll(lambda: received(crm, 5), timeout=20)
                await poll(lambda: received(audited, 5), timeout=20)
            # the masked endpoint's CRM is down now: connection refused
            async with Phone(5070, "busy"):
                second = await submit_lead(service.base_url, widget, SECOND)
                await wait_for_lead(service.store, second, timeout=30)
            erased = await api(service, "POST", "/api/v1/subjects/erase", {"phone": VISITOR})
            await poll(lambda: received(audited, 9), timeout=20)

            async def refused():
                waiting = await service.store.list_deliveries(endpoint_id=masked["id"],
                                                              status="pending")
                return len(waiting) == 4 and any(d.attempts for d in waiting) and waiting
            waiting = await poll(refused, timeout=20)
            assert len(crm.received) == 5
            async with listening(crm, masked_port):
                clock.skew += 3600  # past every backoff a few failures reach (10 s, 1 min …)
                await poll(lambda: received(crm, 9), timeout=20)
        history = await service.store.delivery_attempts(next(d.id for d in waiting if d.attempts))
        entries = [e for e in await service.store.audit_entries()
                   if e.action == "webhooks.full_number"]
        full_deliveries = await service.store.list_deliveries(endpoint_id=full["id"])
    assert crm.unverified == 0 and audited.unverified == 0
    for receiver in (crm, audited):  # each event once per endpoint, by webhook-id
        assert all(len(got) == 1 for got in receiver.received.values())
    got, got_full = arrived(crm), arrived(audited)
    # in event order (ids are time-ordered), the same for both endpoints
    assert [g["id"] for g in got] == sorted(g["id"] for g in got) == [g["id"] for g in got_full]
    types = [g["type"] for g in got]
    assert set(types[:5]) == LEAD_EVENTS and types[0] == events.LEAD_CREATED
    assert before(types[:5], events.CALL_CONNECTED, events.ATTEMPT_FINISHED)
    assert before(types[:5], events.CALL_CONNECTED, events.RECORDING_READY)
    assert before(types[:5], events.ATTEMPT_FINISHED, events.LEAD_DONE)
    assert types[5:] == [events.LEAD_CREATED, events.ATTEMPT_FINISHED, events.LEAD_DONE,
                         events.SUBJECT_ERASED]
    assert [g["data"]["lead_id"] for g in got[:8]] == [first] * 5 + [second] * 3
    ready = next(g["data"] for g in got if g["type"] == events.RECORDING_READY)
    assert (ready["recording_id"], ready["status"]) == (recording.id, "complete")
    finished = [g["data"] for g in got if g["type"] == events.ATTEMPT_FINISHED]
    assert [f["outcome"] for f in finished] == ["connected", "visitor-busy"]
    assert got[-1]["data"]["lead_ids"] == [first] and erased["leads"] == 1

    # masked: no full number anywhere
    assert all(VISITOR not in str(g) and SECOND not in str(g) for g in got)
    assert [g["data"].get("phone_masked") for g in got] == (
        [mask(VISITOR)] * 5 + [mask(SECOND)] * 3 + [None])
    # full numbers, each delivery audited (not the erasure's: it names no number)
    assert [g["data"].get("phone") for g in got_full] == [VISITOR] * 5 + [SECOND] * 3 + [None]
    numbered = {d.id for d in full_deliveries if d.event_type != events.SUBJECT_ERASED}
    assert {e.target for e in entries} == {f"delivery:{d}" for d in numbered}
    assert len(entries) == 8
    assert all(VISITOR not in e.detail and SECOND not in e.detail for e in entries)
    # the down time is in the history: refused, then delivered
    assert history[0]["code"] is None and "Connect" in history[0]["error"]
    assert history[-1]["code"] == 200
