"""The retention run prunes the webhooks' outbox: delivered deliveries past their age go with
their attempts and events, dead ones are kept longer, pending ones always; and the purge of
expired leads tells the CRMs (lead.purged) so that they can drop their copies."""

from __future__ import annotations

import time

import pytest
from prometheus_client import generate_latest

from callengine.config import OutboxRetention
from callengine.flow import Outcome, Result
from callengine.hooks import events
from callengine.model import Consent
from callengine.metrics import Metrics
from callengine.recordings import RecordingVault
from callengine.retention import DAY, Purger, start_schedule
from callengine.storage import KeyStore, Store
from tests.support.engine import DATA_KEY, add_widget, poll

NOW = 1_800_000_000.0
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
async def env(tmp_path):
    (tmp_path / "recordings").mkdir()
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        yield store, RecordingVault(tmp_path / "recordings", keystore)


async def lead_at(store: Store, widget, created: float, phone: str) -> str:
    lead = await store.create_lead(
        widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name=None,
        email=None, consent=Consent(False, False, "v1"), now=created)
    await store.get_lead(lead.id)  # moved into the store
    return lead.id


async def test_settled_deliveries_are_pruned_by_age_dead_ones_kept_longer(env):
    store, vault = env
    widget = await add_widget(store)
    await store.add_webhook("http://crm.example/hook", "", (events.LEAD_CREATED,), False,
                            SECRET, NOW - 60 * DAY)
    for i in range(5):
        await lead_at(store, widget, time.time(), f"+4860100000{i}")
    claimed = await store.claim_deliveries(time.time(), 60, 10)
    ids = [c.delivery.id for c in claimed]
    assert len(ids) == 5
    # created (the event's time) and settled: delivered 10 and 2 days ago, dead made 40 and
    # 10 days ago, one still pending (it failed once)
    plan = [(NOW - 11 * DAY, NOW - 10 * DAY, True), (NOW - 3 * DAY, NOW - 2 * DAY, True),
            (NOW - 40 * DAY, NOW - 39 * DAY, False), (NOW - 10 * DAY, NOW - 9 * DAY, False),
            (NOW - 40 * DAY, NOW - 40 * DAY, None)]
    for delivery_id, (created, at, delivered) in zip(ids, plan):
        await store.record_delivery(delivery_id, at, code=200 if delivered else 503,
                                    latency_ms=3.0, error=None if delivered else "HTTP 503",
                                    delivered=bool(delivered),
                                    retry_at=NOW + 60 if delivered is None else None)
        async with store._transaction() as db:
            await db.execute("UPDATE webhook_deliveries SET created_at = ? WHERE id = ?",
                             (created, delivery_id))
    report = await Purger(store, vault, outbox=OutboxRetention(7, 30)).run(NOW)
    assert report.webhook_deliveries == 2
    assert "pruned 2 settled webhook" in report.summary()
    left = {d.id: d.status for d in await store.list_deliveries()}
    assert left == {ids[1]: "delivered", ids[3]: "dead", ids[4]: "pending"}
    assert await store.delivery_attempts(ids[0]) == []  # the history goes with them
    events_left = await store._db.execute_fetchall("SELECT COUNT(*) FROM webhook_events")
    assert events_left[0][0] == 3
    # a second run has nothing more; a dead one replayed is pending, kept however old
    await store.replay_deliveries(NOW, delivery_id=ids[3])
    # (this time as scheduled, counted in the metrics)
    metrics = Metrics()
    schedule = start_schedule(Purger(store, vault, outbox=OutboxRetention(1, 1)),
                              clock=lambda: NOW, on_pruned=metrics.webhooks_pruned_by_purge)
    try:
        async def pruned():
            return metrics.webhooks_pruned._value.get() == 1  # the delivered one, 2 days old
        await poll(pruned)
    finally:
        await schedule.stop()
    assert {d.id for d in await store.list_deliveries()} == {ids[3], ids[4]}
    assert b"callengine_webhooks_pruned_total 1.0" in generate_latest(metrics.registry)


async def test_the_purge_of_expired_leads_sends_lead_purged(env):
    store, vault = env
    widget = await add_widget(store, lead_retention_days=30)
    old = await lead_at(store, widget, NOW - 40 * DAY, "+48601000001")
    young = await lead_at(store, widget, NOW - 2 * DAY, "+48601000002")
    for lead_id in (old, young):
        attempt = await store.start_attempt(lead_id, NOW - 2 * DAY)
        await store.finish_attempt(attempt, Result(Outcome.VISITOR_BUSY), NOW - 2 * DAY,
                                   retry_at=None)
    await store.add_webhook("http://crm.example/hook", "", (events.LEAD_PURGED,), True,
                            SECRET, NOW)
    report = await Purger(store, vault).run(NOW)
    assert report.leads == 1
    claimed, = await store.claim_deliveries(NOW + 1, 60, 10)
    assert claimed.delivery.event_type == events.LEAD_PURGED
    assert claimed.payload == {"lead_ids": [old], "reason": "retention", "purged_at": NOW}
    assert claimed.phone_e164 is None  # nothing personal left to send
