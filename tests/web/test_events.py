"""The widget's event streams under load and abuse: a cap per client (the intake's keyed hash
of the address, IPv6 by its /64, the address never kept) and per lead, answered 429 with
Retry-After and CORS; a lifetime; and one poller per process that reads every followed lead
in one query and wakes only the streams whose lead changed."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callengine.flow import Strategy
from callengine.model import Agent, widget_settings_from_input
from callengine.services import Services
from callengine.storage import Store
from callengine.web import WebDeps, make_app
from callengine.web import events as event_routes
from tests.support.engine import DATA_KEY
from tests.web.test_web import ADMIN, Clock, lead_body

SHOP = "https://shop.example"
PEER = "X-Test-Peer"  # the test's way to say which address a request comes from


@pytest.fixture
def limits():
    return {"events_per_client": 3, "events_per_lead": 2, "events_lifetime_s": 600.0}


@pytest.fixture
async def env(tmp_path, monkeypatch, limits):
    monkeypatch.setattr(event_routes, "POLL_S", 0.03)
    clock = Clock()
    async with Store.open(tmp_path / "t.db", DATA_KEY) as store:
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await store.add_widget("shop", "Shop", widget_settings_from_input({
            "group": "sales", "allowed_regions": ["PL"], "allowed_origins": [SHOP],
            "max_leads_per_number_per_day": 50, "challenge": "off"}), clock.now)
        services = Services(store, clock=clock)
        app = make_app(WebDeps(services, ADMIN, **limits))

        @web.middleware
        async def peer(request, handler):  # outermost: as if the connection came from there
            if PEER in request.headers:  # (not clone(): the answer is prepared with this one)
                request._transport_peername = (request.headers[PEER], 0)
            return await handler(request)

        app.middlewares.insert(0, peer)
        leads = []
        for i in range(6):
            lead = await services.leads.create(widget, lead_body(phone=f"+48 601 234 5{i:02d}"),
                                               crm=True)
            leads.append(lead.id)
        async with TestClient(TestServer(app)) as client:
            yield client, store, widget, clock, leads, event_routes.hub_of(app)


def events_url(widget, lead_id):
    return f"/api/v1/widgets/{widget.public_key}/leads/{lead_id}/events"


async def next_event(response, timeout=5.0):
    """The next `event: progress` of an open stream, as its data (None at the stream's end)."""
    async def read():
        name = None
        while True:
            raw = await response.content.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "progress":
                return json.loads(line[6:])
    return await asyncio.wait_for(read(), timeout)


async def opened(client, widget, lead_id, peer=None):
    headers = {"Origin": SHOP, **({PEER: peer} if peer else {})}
    response = await client.get(events_url(widget, lead_id), headers=headers)
    assert response.status == 200, await response.text()
    assert (await next_event(response))["status"] == "queued"
    return response


async def refused(client, widget, lead_id, limit, peer=None):
    headers = {"Origin": SHOP, **({PEER: peer} if peer else {})}
    response = await client.get(events_url(widget, lead_id), headers=headers)
    assert response.status == 429
    assert response.content_type == "application/problem+json"
    assert response.headers["Access-Control-Allow-Origin"] == SHOP  # the widget can read it
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    body = await response.json()
    assert body["type"].endswith("/too-many-streams") and body["limit"] == limit
    assert 1 <= int(response.headers["Retry-After"]) == body["retry_after"] <= 600
    return body


async def until(condition, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_streams_per_client_are_capped_and_freed(env):
    client, store, widget, _, leads, hub = env
    streams = [await opened(client, widget, lead) for lead in leads[:3]]
    await refused(client, widget, leads[3], "client")
    # refused before the lead is looked up: an unknown lead is refused the same way
    await refused(client, widget, "no-such-lead", "client")
    # another client (another address) is not affected
    other = await opened(client, widget, leads[3], peer="192.0.2.7")
    # a stream that ends frees its place
    streams.pop().close()
    await until(lambda: hub.open_streams() == 3)
    streams.append(await opened(client, widget, leads[4]))
    for response in [*streams, other]:
        response.close()
    await until(lambda: hub.open_streams() == 0)


async def test_an_ipv6_client_is_its_64_and_its_address_is_not_kept(env):
    client, store, widget, _, leads, hub = env
    streams = [await opened(client, widget, lead, peer=f"2001:db8:1:2::{i + 1}")
               for i, lead in enumerate(leads[:3])]
    await refused(client, widget, leads[3], "client", peer="2001:db8:1:2:ffff::9")  # same /64
    streams.append(await opened(client, widget, leads[3], peer="2001:db8:1:3::1"))  # another
    kept = set(hub._by_client)
    assert kept == {store.client_hash("2001:db8:1:2::1"), store.client_hash("2001:db8:1:3::1")}
    assert not [key for key in kept if "2001" in key or "db8" in key]
    for response in streams:
        response.close()


@pytest.mark.parametrize("limits", [{"events_per_client": 10, "events_per_lead": 1}])
async def test_streams_per_lead_are_capped(env):
    client, _, widget, _, leads, _ = env
    first = await opened(client, widget, leads[0])
    await refused(client, widget, leads[0], "lead", peer="192.0.2.8")  # whoever asks
    second = await opened(client, widget, leads[1])
    first.close()
    second.close()


@pytest.mark.parametrize("limits", [{"events_per_lead": 0, "events_lifetime_s": 30}])
async def test_streams_turned_off_are_refused_with_a_retry_after(env):
    client, _, widget, _, leads, _ = env
    body = await refused(client, widget, leads[0], "lead")
    assert body["retry_after"] == 30


@pytest.mark.parametrize("limits", [{"events_lifetime_s": 0.4}])
async def test_a_stream_ends_after_its_lifetime(env):
    client, _, widget, _, leads, hub = env
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await opened(client, widget, leads[0])
    assert await next_event(response) is None  # the end, the lead still queued
    assert 0.3 <= loop.time() - started < 3
    await until(lambda: hub.open_streams() == 0)
    # and the widget then polls the status route, which still answers
    status = await client.get(f"/api/v1/widgets/{widget.public_key}/leads/{leads[0]}",
                              headers={"Origin": SHOP})
    assert status.status == 200 and (await status.json())["status"] == "queued"


@pytest.mark.parametrize("limits", [{"events_per_client": 10}])
async def test_one_query_reads_every_followed_lead(env, monkeypatch):
    client, store, widget, clock, leads, hub = env
    reads, gets = [], []
    real_statuses, real_get = store.lead_statuses, store.get_lead

    async def lead_statuses(ids):
        reads.append(sorted(ids))
        return await real_statuses(ids)

    async def get_lead(lead_id):
        gets.append(lead_id)
        return await real_get(lead_id)

    monkeypatch.setattr(store, "lead_statuses", lead_statuses)
    monkeypatch.setattr(store, "get_lead", get_lead)
    streams = [await opened(client, widget, lead) for lead in leads]
    assert len(gets) == len(leads)  # each stream's first look, nothing more
    reads.clear()
    await asyncio.sleep(0.4)  # ~13 ticks of 0.03 s
    assert reads and all(ids == sorted(leads) for ids in reads)
    assert len(reads) <= 0.4 / 0.03 + 2  # one per tick, not one per stream per tick
    assert len(gets) == len(leads)
    # a change to one lead wakes its stream only
    attempt = await store.start_attempt(leads[2], clock.now)
    await store.set_progress(leads[2], "ringing-agents", False, attempt.id, clock.now)
    # Two commits: a poller tick between them sends the started attempt first (no progress yet).
    seen = [(await next_event(streams[2]))["progress"]]
    if seen[0] is None:
        seen.append((await next_event(streams[2]))["progress"])
    assert seen[-1] == "ringing-agents"
    for i, response in enumerate(streams):
        if i != 2:
            with pytest.raises(TimeoutError):
                await next_event(response, timeout=0.2)
    for response in streams:
        response.close()
    await until(lambda: hub.open_streams() == 0)
    reads.clear()
    await asyncio.sleep(0.2)
    assert reads == []  # no stream, no polling


async def test_a_visitor_gone_frees_the_place_on_the_real_listener(env, monkeypatch):
    """The engine's listener doesn't cancel a handler whose client left (aiohttp's
    handler_cancellation is off there, unlike in TestServer) and a quiet stream writes only a
    heartbeat every 15 s: the poller notices the closed connection within a tick."""
    from callengine.web import listening

    _, store, widget, clock, leads, _ = env
    assert event_routes.HEARTBEAT_S == 15.0
    deps = WebDeps(Services(store, clock=clock), ADMIN, events_per_client=1)
    hubs = []
    real_add = event_routes.add_routes

    def add_routes(app):
        real_add(app)
        hubs.append(event_routes.hub_of(app))

    monkeypatch.setattr(event_routes, "add_routes", add_routes)
    async with listening(deps, "127.0.0.1", 0) as port, aiohttp.ClientSession(
            f"http://127.0.0.1:{port}") as http:
        first = await http.get(events_url(widget, leads[0]))
        assert first.status == 200 and (await next_event(first))["status"] == "queued"
        assert (await http.get(events_url(widget, leads[1]))).status == 429
        first.close()  # the visitor leaves
        await until(lambda: hubs[0].open_streams() == 0, timeout=1.0)
        second = await http.get(events_url(widget, leads[1]))
        assert second.status == 200
        second.close()
