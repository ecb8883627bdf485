"""Calling hours through HTTP: the public hours route, after-hours leads, slot picking."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.flow import Strategy
from callengine.model import Agent, widget_settings_from_input
from callengine.services import Services
from callengine.storage import Store
from callengine.web import WebDeps, make_app
from tests.support.engine import DATA_KEY
from tests.web.test_web import ADMIN, Clock, lead_body

WAW = ZoneInfo("Europe/Warsaw")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=WAW).timestamp()


@pytest.fixture
async def env(tmp_path):
    clock = Clock()
    clock.now = at("2026-12-01 18:00")  # a Tuesday, after hours
    async with Store.open(tmp_path / "t.db", DATA_KEY) as store:
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        settings = widget_settings_from_input({
            "group": "sales", "allowed_regions": ["PL"], "max_leads_per_number_per_day": 50,
            "time_zone": "Europe/Warsaw", "slot_capacity": 1, "slot_minutes": 60,
            "slot_days": 2, "hours": {"wed": [["09:00", "11:00"]]}, "challenge": "off"})
        widget = await store.add_widget("shop", "Shop", settings, clock.now)
        app = make_app(WebDeps(Services(store, clock=clock), ADMIN))
        async with TestClient(TestServer(app)) as client:
            yield client, store, widget, clock


async def test_hours_route(env):
    client, _, widget, _ = env
    response = await client.get(f"/api/v1/widgets/{widget.public_key}/hours")
    assert response.status == 200
    assert await response.json() == {
        "open": False, "time_zone": "Europe/Warsaw", "next_open_at": at("2026-12-02 09:00"),
        "slots": [{"start": int(at("2026-12-02 09:00")), "end": int(at("2026-12-02 10:00")),
                   "free": 1},
                  {"start": int(at("2026-12-02 10:00")), "end": int(at("2026-12-02 11:00")),
                   "free": 1}]}


async def test_after_hours_lead_is_scheduled_for_the_opening(env):
    client, store, widget, _ = env
    response = await client.post(f"/api/v1/widgets/{widget.public_key}/leads", json=lead_body())
    assert response.status == 201
    data = await response.json()
    assert data["scheduled_for"] == at("2026-12-02 09:00")
    lead = await store.get_lead(data["id"])
    assert lead.next_attempt_at == at("2026-12-02 09:00")
    assert await store.due_leads(at("2026-12-02 08:59"), 10) == []
    assert [d.id for d in await store.due_leads(at("2026-12-02 09:00"), 10)] == [lead.id]


async def test_slot_full_and_invalid(env):
    client, store, widget, _ = env
    slot = int(at("2026-12-02 10:00"))
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    first = await client.post(url, json=lead_body(slot=slot))
    assert first.status == 201 and (await first.json())["scheduled_for"] == slot
    full = await client.post(url, json=lead_body(slot=slot, phone="+48 601 234 568"))
    assert full.status == 409 and (await full.json())["type"].endswith("/slot-full")
    for bad in (slot + 1, "soon", True, int(at("2026-12-05 10:00"))):
        refused = await client.post(url, json=lead_body(slot=bad))
        assert refused.status == 422 and (await refused.json())["type"].endswith("/slot-invalid")
    assert len(await store.list_leads()) == 1  # nothing written by the refusals
    hours = await (await client.get(f"/api/v1/widgets/{widget.public_key}/hours")).json()
    assert [s["free"] for s in hours["slots"]] == [1, 0]


async def test_last_place_goes_to_one_of_two(env):
    client, store, widget, _ = env
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    slot = int(at("2026-12-02 09:00"))
    answers = await asyncio.gather(*(
        client.post(url, json=lead_body(slot=slot, phone=f"+48 601 234 56{n}")) for n in range(4)))
    assert sorted(a.status for a in answers) == [201, 409, 409, 409]
    assert len(await store.list_leads()) == 1


async def test_crm_route_needs_a_role_and_schedules(env):
    client, store, widget, _ = env
    from tests.web.test_access import token_for

    body = {**lead_body(), "widget": widget.id, "scheduled_for": at("2026-12-09 11:30")}
    assert (await client.post("/api/v1/leads", json=body)).status == 401
    viewer = await token_for(client, "viewer")
    assert (await client.post("/api/v1/leads", json=body, headers=viewer)).status == 403
    supervisor = await token_for(client, "supervisor")
    response = await client.post("/api/v1/leads", json=body, headers=supervisor)
    assert response.status == 201
    data = await response.json()
    assert data["scheduled_for"] == at("2026-12-16 09:00")  # Wed 9th 11:30 is after its hours
    assert (await store.get_lead(data["id"])).next_attempt_at == at("2026-12-16 09:00")
    viewer_list = await (await client.get("/api/v1/leads", headers=viewer)).json()
    assert viewer_list["leads"][0]["scheduled_for"] == at("2026-12-16 09:00")
    slot = int(at("2026-12-02 09:00"))
    by_slot = await client.post("/api/v1/leads", json={**lead_body(), "widget": widget.id,
                                                        "slot": slot}, headers=supervisor)
    assert (await by_slot.json())["scheduled_for"] == slot
    # the public route takes no scheduled_for
    public = await client.post(f"/api/v1/widgets/{widget.public_key}/leads",
                               json=lead_body(scheduled_for=slot))
    assert public.status == 422
