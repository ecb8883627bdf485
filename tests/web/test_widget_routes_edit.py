"""GET/PATCH/DELETE /api/v1/widgets/{widget_id}: one widget read, edited (its settings merged),
disabled and enabled, removed (refused while it has leads); every refusal a problem, nothing
written. A disabled widget's intake answers 403 widget-disabled and writes nothing; its public
config says so; its accepted leads keep their status route."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.storage import LeadFilter
from callengine.access import Principal, Role
from callengine.model import widget_settings_from_input
from callengine.services import Services
from callengine.storage import Store
from callengine.web import WebDeps, make_app
from tests.support.engine import DATA_KEY
from tests.support.shop import disabled_long_ago
from tests.web.test_web import ADMIN, Clock, lead_body

SHOP = "https://shop.example"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
async def env(tmp_path):
    clock = Clock()
    ops = Principal("ops", Role.ADMIN)
    async with Store.open(tmp_path / "t.db", DATA_KEY) as store:
        services = Services(store, clock=clock, on_lead=lambda: None)
        await services.config.add_agent(ops, "alice", "PJSIP/agent1")
        await services.config.add_group(ops, "sales", "ring-all", 20, ["alice"])
        await services.config.add_widget(ops, "shop", "Shop", {
            "group": "sales", "allowed_regions": ["PL"], "allowed_origins": [SHOP],
            "challenge": "off"})
        viewer = await services.tokens.create(ops, "viewer", "viewer")
        app = make_app(WebDeps(services, ADMIN))
        async with TestClient(TestServer(app)) as client:
            yield client, store, viewer.token


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return await response.json()


async def config_actions(store: Store) -> list[str]:
    """The widget changes audited (not the setting up: its creations, the viewer's token)."""
    return [e.action for e in await store.audit_entries()
            if e.action.startswith("config.widget.") and e.action != "config.widget.create"]


async def widget_rows(store: Store) -> list:
    return [(w.name, w.settings, w.disabled_at) for w in await store.list_widgets()]


async def test_get_and_patch_merge_the_settings(env):
    client, store, _ = env
    got = await (await client.get("/api/v1/widgets/shop", headers=AUTH)).json()
    assert got["enabled"] is True and got["disabled_at"] is None
    response = await client.patch("/api/v1/widgets/shop", headers=AUTH, json={
        "name": "Shop PL", "settings": {"colour": "#112233", "position": "bottom-left"}})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["name"] == "Shop PL" and body["public_key"] == got["public_key"]
    assert body["settings"]["colour"] == "#112233"
    assert body["settings"]["allowed_origins"] == [SHOP]  # kept
    config = await (await client.get(f"/api/v1/widgets/{got['public_key']}/config")).json()
    assert config["colour"] == "#112233" and config["position"] == "bottom-left"
    assert await config_actions(store) == ["config.widget.update"]


@pytest.mark.parametrize("body, status, field", [
    ({"settings": {"colour": "blue"}}, 422, "colour"),
    ({"settings": {"max_attempts": 99}}, 422, "max_attempts"),
    ({"settings": {"group": "nobody"}}, 404, None),
    ({"color": "#000000"}, 422, "color"),
    ({"enabled": "false"}, 422, "enabled"),
    ({"name": "", "enabled": False}, 422, "name"),
])
async def test_a_refused_patch_is_a_problem_and_writes_nothing(env, body, status, field):
    client, store, _ = env
    before = await widget_rows(store)
    found = await problem(await client.patch("/api/v1/widgets/shop", headers=AUTH, json=body),
                          status)
    assert found.get("field") == field
    assert await widget_rows(store) == before
    assert await config_actions(store) == []


async def test_unknown_widget_and_roles(env):
    client, store, viewer = env
    await problem(await client.get("/api/v1/widgets/nope", headers=AUTH), 404)
    await problem(await client.patch("/api/v1/widgets/nope", headers=AUTH, json={}), 404)
    await problem(await client.delete("/api/v1/widgets/nope", headers=AUTH), 404)
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    await problem(await client.get("/api/v1/widgets/shop", headers=as_viewer), 403)
    await problem(await client.patch("/api/v1/widgets/shop", headers=as_viewer,
                                     json={"enabled": False}), 403)
    await problem(await client.delete("/api/v1/widgets/shop", headers=as_viewer), 403)
    await problem(await client.delete("/api/v1/widgets/shop"), 401)
    assert (await store.get_widget("shop")).enabled


async def test_a_disabled_widget_refuses_new_leads_and_writes_nothing(env):
    client, store, _ = env
    key = (await store.get_widget("shop")).public_key
    intake = f"/api/v1/widgets/{key}/leads"
    accepted = await client.post(intake, json=lead_body(), headers={"Origin": SHOP})
    assert accepted.status == 201, await accepted.text()
    lead_id = (await accepted.json())["id"]
    response = await client.patch("/api/v1/widgets/shop", headers=AUTH, json={"enabled": False})
    assert (await response.json())["enabled"] is False
    refused = await client.post(intake, json=lead_body(phone="+48 601 234 568"),
                                headers={"Origin": SHOP})
    found = await problem(refused, 403)
    assert found["type"].endswith("/widget-disabled")
    assert refused.headers["Access-Control-Allow-Origin"] == SHOP  # the widget can read why
    crm = await client.post("/api/v1/leads", headers=AUTH,
                            json={**lead_body(phone="+48 601 234 569"), "widget": "shop"})
    assert (await problem(crm, 403))["type"].endswith("/widget-disabled")
    assert [lead.id for lead in await store.list_leads(LeadFilter(widget_id="shop"))] == [lead_id]
    config = await (await client.get(f"/api/v1/widgets/{key}/config")).json()
    assert config["enabled"] is False
    status = await client.get(f"/api/v1/widgets/{key}/leads/{lead_id}")  # still followed
    assert status.status == 200 and (await status.json())["status"] == "queued"
    enabled = await client.patch("/api/v1/widgets/shop", headers=AUTH, json={"enabled": True})
    assert (await enabled.json())["enabled"] is True
    again = await client.post(intake, json=lead_body(phone="+48 601 234 568"),
                              headers={"Origin": SHOP})
    assert again.status == 201
    assert await config_actions(store) == [
        "config.widget.disable", "config.widget.enable"]


async def test_delete_is_refused_while_leads_name_it_then_allowed(env):
    client, store, _ = env
    key = (await store.get_widget("shop")).public_key
    await store.add_widget("spare", "Spare", widget_settings_from_input({"group": "sales"}), 0)
    assert (await client.post(f"/api/v1/widgets/{key}/leads", json=lead_body())).status == 201
    found = await problem(await client.delete("/api/v1/widgets/shop", headers=AUTH), 409)
    assert found["type"].endswith("/widget-in-use")
    assert found["leads"] == 1 and found["tombstones"] == 0
    assert "disable it instead" in found["detail"]
    assert await store.get_widget("shop")
    enabled = await problem(await client.delete("/api/v1/widgets/spare", headers=AUTH), 409)
    assert "disable it first" in enabled["detail"]
    await disabled_long_ago(store, "spare", now=Clock().now)  # the services run on Clock()
    response = await client.delete("/api/v1/widgets/spare", headers=AUTH)
    assert response.status == 204, await response.text()
    await problem(await client.get("/api/v1/widgets/spare", headers=AUTH), 404)
    assert await config_actions(store) == ["config.widget.remove"]
