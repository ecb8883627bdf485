"""A connected call over the fake ARI, with the webhooks' worker running beside the engine: a
local receiver (verifying every signature) gets lead.created, call.connected,
attempt.finished and lead.done, in that order, each once."""

from __future__ import annotations

import asyncio
import time

import pytest

from callengine.config import DialingConfig
from callengine.engine import Engine
from callengine.flow import Outcome, State, Strategy
from callengine.hooks import events
from callengine.hooks.delivery import DeliveryWorker
from callengine.model import LEAD_CALLING, LEAD_DONE, Consent
from callengine.services import Services
from callengine.storage import Store
from tests.engine.test_driver import lead_is
from tests.hooks.test_delivery import ADMIN, Receiver, free_port, listening
from tests.support.engine import DATA_KEY, VISITOR, add_widget, poll
from tests.support.fake_ari import FakeAri


async def test_a_connected_call_sends_its_events_in_order(tmp_path):
    ari = FakeAri()
    port = free_port()
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        widget = await add_widget(store, agents=("agent1",), strategy=Strategy.RING_ALL)
        endpoint = await Services(store).webhooks.add(
            ADMIN, {"url": f"http://127.0.0.1:{port}/hook"})
        receiver = Receiver([endpoint["secret"]])
        async with listening(receiver, port):
            lead = await store.create_lead(
                widget, phone_e164=VISITOR, phone_region="PL", phone_kind="mobile", name=None,
                email=None, consent=Consent(False, False, "v1"), now=time.time())
            engine = Engine(store, ari, DialingConfig(max_concurrent_calls=2,
                                                      poll_interval_s=0.05))
            worker = DeliveryWorker(store, poll_s=0.02)
            tasks = [asyncio.create_task(engine.run()), asyncio.create_task(worker.run())]
            try:
                await poll(lead_is(store, lead.id, LEAD_CALLING, State.CONNECTED.value))
                ari.far_end_hangs_up("@pstn")
                done = await poll(lead_is(store, lead.id, LEAD_DONE))

                async def all_four():
                    return len(receiver.received) == 4
                await poll(all_four)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with pytest.raises(asyncio.CancelledError):
                        await task
    assert done.outcome == Outcome.CONNECTED.value
    assert receiver.unverified == 0
    arrived = [got[0] for got in receiver.received.values()]  # a dict keeps arrival order
    assert all(len(got) == 1 for got in receiver.received.values())
    assert [a["type"] for a in arrived] == [events.LEAD_CREATED, events.CALL_CONNECTED,
                                            events.ATTEMPT_FINISHED, events.LEAD_DONE]
    assert {a["data"]["lead_id"] for a in arrived} == {lead.id}
    assert arrived[2]["data"]["outcome"] == Outcome.CONNECTED.value
    assert all(VISITOR not in str(a) for a in arrived)
