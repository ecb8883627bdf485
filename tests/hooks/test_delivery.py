"""The webhooks' delivery worker against a local receiver that verifies every signature with
standardwebhooks' own Webhook.verify: down (connection refused, then 503) and up again, each
event arrives once by webhook-id; the backoff on a controllable clock, the dead state and the
replay; rotation's two signatures; the number masked unless the endpoint takes full ones."""

from __future__ import annotations

import json
import socket
import time
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from callengine.access import Principal, Role
from callengine.hooks import events
from callengine.hooks.delivery import DeliveryWorker
from callengine.model import Consent
from callengine.services import Services
from callengine.storage import Store
from tests.support.engine import DATA_KEY, VISITOR, add_widget

ADMIN = Principal("admin-token", Role.ADMIN)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Receiver:
    """A CRM's endpoint: answers `status`; keeps each verified delivery by webhook-id."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = secrets
        self.status = 200
        self.received: dict[str, list[dict]] = {}
        self.signatures: list[str] = []
        self.unverified = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.signatures.append(request.headers["webhook-signature"])
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, dict(request.headers))
                break
            except WebhookVerificationError:
                continue
        else:
            self.unverified += 1
            return web.Response(status=400)
        if self.status == 200:
            self.received.setdefault(request.headers["webhook-id"], []).append(json.loads(body))
        return web.Response(status=self.status)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def listening(receiver: Receiver, port: int):
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()


TRIES: list[tuple[str, str]] = []  # what the worker told the metrics, per try


@asynccontextmanager
async def setup(tmp_path, *, full_numbers: bool = False):
    clock = Clock()
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        services = Services(store, clock=clock)
        widget = await add_widget(store)
        port = free_port()
        endpoint = await services.webhooks.add(ADMIN, {
            "url": f"http://127.0.0.1:{port}/hook", "full_numbers": full_numbers})
        worker = DeliveryWorker(store, clock=clock, timeout_s=5,
                                on_try=lambda event, outcome: TRIES.append((event, outcome)))
        TRIES.clear()
        try:
            yield store, services, widget, endpoint, worker, clock, port
        finally:
            await worker.close()


async def _leads(store: Store, widget, count: int, first: int = 0) -> list[str]:
    ids = []
    for i in range(first, first + count):
        lead = await store.create_lead(
            widget, phone_e164=f"+4860123456{i}", phone_region="PL", phone_kind="mobile",
            name=None, email=None, consent=Consent(False, False, "v1"), now=time.time())
        await store.get_lead(lead.id)
        ids.append(lead.id)
    return ids


def caught_up(clock: Clock) -> None:
    """The test's clock moved on to the wall clock the leads were written at."""
    clock.now = max(clock.now, time.time())


async def _due(store: Store, clock: Clock) -> None:
    """The clock moved to the next pending delivery's time."""
    pending = await store.list_deliveries(status=events.PENDING)
    clock.now = max(clock.now, min(d.next_at for d in pending))


async def test_down_then_up_each_event_arrives_once(tmp_path):
    async with setup(tmp_path) as (store, services, widget, endpoint, worker, clock, port):
        lead_ids = await _leads(store, widget, 3)
        caught_up(clock)
        receiver = Receiver([endpoint["secret"]])
        assert await worker.run_once() == 3  # connection refused: nothing listens yet
        # the oldest tried; the others wait as long behind it, in order, no attempt counted
        *later, first = await services.webhooks.deliveries(ADMIN, status=events.PENDING)
        assert first["attempts"] == 1 and first["last_code"] is None
        assert "Connect" in first["last_error"]
        assert [d["attempts"] for d in later] == [0, 0]
        assert {d["next_at"] for d in later} == {first["next_at"]}
        assert await worker.run_once() == 0  # not due yet: 10 s later
        async with listening(receiver, port):
            receiver.status = 503
            await _due(store, clock)
            await worker.run_once()
            assert receiver.received == {} and len(receiver.signatures) == 1  # one tried
            await _due(store, clock)
            receiver.status = 200
            await worker.run_once()
        assert receiver.unverified == 0
        assert all(len(got) == 1 for got in receiver.received.values())
        got = [d[0] for d in receiver.received.values()]
        assert sorted(g["data"]["lead_id"] for g in got) == sorted(lead_ids)
        assert {g["type"] for g in got} == {events.LEAD_CREATED}
        assert all(g["data"]["phone_masked"].startswith("+48") and VISITOR[:-1] not in
                   json.dumps(g) for g in got)
        delivered = await services.webhooks.deliveries(ADMIN, status=events.DELIVERED)
        assert len(delivered) == 3 and set(receiver.received) == {
            d["webhook_id"] for d in delivered}
        history = await services.webhooks.attempts(ADMIN, delivered[-1]["id"])
        assert [a["code"] for a in history] == [None, 503, 200]
        assert all(a["latency_ms"] >= 0 for a in history)
        assert await worker.run_once() == 0  # nothing left: each once
        # each try reported for the metrics: 1 refused + 1 answered 503, then 3 delivered
        assert sorted(TRIES) == sorted([(events.LEAD_CREATED, "failed")] * 2
                                       + [(events.LEAD_CREATED, "delivered")] * 3)


async def test_backoff_then_dead_then_replayed(tmp_path):
    async with setup(tmp_path) as (store, services, widget, endpoint, worker, clock, port):
        await _leads(store, widget, 1)
        caught_up(clock)
        receiver = Receiver([endpoint["secret"]])
        receiver.status = 503
        async with listening(receiver, port):
            waits = []
            for _ in range(events.MAX_ATTEMPTS):
                tried_at = clock.now
                assert await worker.run_once() == 1
                pending = await store.list_deliveries(status=events.PENDING)
                if pending:
                    waits.append(pending[0].next_at - tried_at)
                    await _due(store, clock)
            assert waits == list(events.BACKOFF_S)
            dead, = await services.webhooks.deliveries(ADMIN, status=events.DEAD)
            assert dead["attempts"] == events.MAX_ATTEMPTS and dead["last_code"] == 503
            assert await worker.run_once() == 0
            receiver.status = 200
            assert await services.webhooks.replay(ADMIN, endpoint_id=endpoint["id"]) == 1
            assert await worker.run_once() == 1
        assert len(receiver.received) == 1
        delivered, = await services.webhooks.deliveries(ADMIN, status=events.DELIVERED)
        assert len(await services.webhooks.attempts(ADMIN, delivered["id"])) == (
            events.MAX_ATTEMPTS + 1)


async def test_a_rotated_secret_signs_beside_the_old_one_until_the_grace_ends(tmp_path):
    async with setup(tmp_path) as (store, services, widget, endpoint, worker, clock, port):
        old = endpoint["secret"]
        rotated = await services.webhooks.rotate(ADMIN, endpoint["id"], 3600)
        new = rotated["secret"]
        assert new != old and new.startswith("whsec_")
        receiver = Receiver([old])  # a CRM that has not taken the new secret yet
        async with listening(receiver, port):
            await _leads(store, widget, 1)
            caught_up(clock)
            await worker.run_once()
            assert len(receiver.signatures[-1].split(" ")) == 2 and len(receiver.received) == 1
            clock.now += 3601  # the grace is over: the new secret only
            await _leads(store, widget, 1, first=1)
            caught_up(clock)
            await worker.run_once()
            assert receiver.unverified == 1
            receiver.secrets = [new]
            await _due(store, clock)
            await worker.run_once()
        assert receiver.unverified == 1 and len(receiver.received) == 2
        assert len(receiver.signatures[-1].split(" ")) == 1


async def test_a_full_number_only_where_configured_and_each_delivery_audited(tmp_path):
    async with setup(tmp_path, full_numbers=True) as (store, services, widget, endpoint,
                                                       worker, clock, port):
        receiver = Receiver([endpoint["secret"]])
        async with listening(receiver, port):
            await _leads(store, widget, 1)
            caught_up(clock)
            await worker.run_once()
        (got,), = receiver.received.values()
        assert got["data"]["phone"] == "+48601234560" and "phone_masked" not in got["data"]
        entries = [e for e in await store.audit_entries() if e.action == "webhooks.full_number"]
        assert len(entries) == 1 and "+4860" not in entries[0].detail


@pytest.mark.parametrize("data", [{"url": "ftp://x"}, {"url": "http://a@b/"},
                                  {"url": "http://crm/", "events": ["lead.nope"]},
                                  {"url": "http://crm/", "full_numbers": "yes"}])
async def test_an_endpoint_refused(tmp_path, data):
    from callengine.errors import InvalidInput

    async with setup(tmp_path) as (store, services, *_):
        with pytest.raises(InvalidInput):
            await services.webhooks.add(ADMIN, data)
