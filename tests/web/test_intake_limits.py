"""The intake's limits through HTTP: the client is the peer's address (hashed in the store),
a duplicate comes back 200 with the same lead, and a 429 says which limit and when."""

from __future__ import annotations

from callengine.model import widget_settings_from_input
from tests.web import test_web
from tests.web.test_web import lead_body

env = test_web.env  # the fixture


async def test_duplicate_within_the_window_is_the_same_lead(env):
    client, store, _, clock, _ = env
    widget = await store.add_widget("dup", "Dup", widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "duplicate_window_s": 60}), clock.now)
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    first = await client.post(url, json=lead_body())
    assert first.status == 201 and "duplicate" not in await first.json()
    again = await client.post(url, json=lead_body())
    body = await again.json()
    assert again.status == 200 and body["duplicate"] is True
    assert body["id"] == (await first.json())["id"]
    assert len(await store.list_leads()) == 1


async def test_the_client_limit_through_http(env):
    client, store, _, clock, _ = env
    widget = await store.add_widget("cl", "Cl", widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "max_numbers_per_client_per_hour": 2}),
        clock.now)
    url = f"/api/v1/widgets/{widget.public_key}/leads"
    for n in range(2):
        assert (await client.post(url, json=lead_body(phone=f"+4860123450{n}"))).status == 201
    response = await client.post(url, json=lead_body(phone="+48601234509"))
    problem = await response.json()
    assert response.status == 429 and problem["limit"] == "client"
    assert response.headers["Retry-After"] == str(problem["retry_after"]) == "3600"
    clock.now += 3601
    assert (await client.post(url, json=lead_body(phone="+48601234509"))).status == 201
