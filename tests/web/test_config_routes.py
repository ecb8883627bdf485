"""The API's agent and group routes (list, PATCH, DELETE) over a real store: the views they
answer, refusals as problem+json with the service's reason, and only an admin token may."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.access import Principal, Role
from callengine.flow import Strategy
from callengine.model import Agent, widget_settings_from_input
from callengine.services import Services
from callengine.storage import Store
from callengine.web import WebDeps, make_app
from tests.support.engine import DATA_KEY

ADMIN = "admin-token-0123456789abcdef"
H = {"Authorization": f"Bearer {ADMIN}"}
NOW = 1_800_000_000.0


@pytest.fixture
async def env(tmp_path):
    """alice and bob in "sales" (the "shop" widget's group), bob in "support" too."""
    async with Store.open(tmp_path / "t.db", DATA_KEY) as store:
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_agent(Agent("bob", "PJSIP/agent2"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice", "bob"])
        await store.add_group("support", Strategy.SEQUENTIAL, 15, ["bob"])
        await store.add_widget("shop", "Shop", widget_settings_from_input({"group": "sales"}),
                               NOW)
        services = Services(store, clock=lambda: NOW)
        tokens = {role.value: (await services.tokens.create(
            Principal("setup", Role.ADMIN), role.value, role.value)).token
            for role in (Role.SUPERVISOR, Role.AGENT, Role.VIEWER)}
        app = make_app(WebDeps(services, ADMIN))
        async with TestClient(TestServer(app)) as client:
            yield client, store, tokens


async def problem(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    return await response.json()


async def config_actions(store: Store) -> list[tuple[str, str, str]]:
    return [(e.action, e.target, e.detail) for e in await store.audit_entries()
            if e.action.startswith("config.")]


async def test_agents_and_groups_are_listed(env):
    client, _, _ = env
    agents = await (await client.get("/api/v1/agents", headers=H)).json()
    assert agents == {"agents": [
        {"name": "alice", "endpoint": "PJSIP/agent1", "enabled": True, "paused": False},
        {"name": "bob", "endpoint": "PJSIP/agent2", "enabled": True, "paused": False}]}
    groups = await (await client.get("/api/v1/groups", headers=H)).json()
    assert groups == {"groups": [
        {"name": "sales", "strategy": "ring-all", "ring_timeout": 20,
         "agents": ["alice", "bob"], "accept_digit": None, "accept_timeout": 10},
        {"name": "support", "strategy": "sequential", "ring_timeout": 15, "agents": ["bob"],
         "accept_digit": None, "accept_timeout": 10}]}


async def test_an_agent_is_edited_disabled_and_enabled(env):
    client, store, _ = env
    r = await client.patch("/api/v1/agents/alice", json={"endpoint": "PJSIP/desk7"}, headers=H)
    assert r.status == 200
    assert await r.json() == {"name": "alice", "endpoint": "PJSIP/desk7", "enabled": True,
                              "paused": False}
    r = await client.patch("/api/v1/agents/alice", json={"enabled": False}, headers=H)
    assert (await r.json())["enabled"] is False
    assert [a.enabled for a in await store.list_agents()] == [False, True]
    r = await client.patch("/api/v1/agents/alice", json={"enabled": True}, headers=H)
    assert (await r.json())["enabled"] is True
    r = await client.patch("/api/v1/agents/alice", json={"paused": True}, headers=H)
    assert (await r.json())["paused"] is True
    assert [a.paused for a in await store.list_agents()] == [True, False]
    r = await client.patch("/api/v1/agents/alice", json={"paused": False}, headers=H)
    assert (await r.json())["paused"] is False
    assert await config_actions(store) == [
        ("config.agent.update", "agent:alice", "PJSIP/desk7"),
        ("config.agent.disable", "agent:alice", ""),
        ("config.agent.enable", "agent:alice", ""),
        ("config.agent.pause", "agent:alice", ""),
        ("config.agent.resume", "agent:alice", "")]


@pytest.mark.parametrize("body, field", [
    ({"endpoint": "nothing"}, "endpoint"), ({"enabled": "no"}, "enabled"),
    ({"endpoint": "PJSIP/x", "enabled": 1}, "enabled"), ({}, "endpoint"),
    ({"paused": "yes"}, "paused"),
    ({"name": "carol"}, "name"),
])
async def test_a_refused_agent_edit_is_422_and_changes_nothing(env, body, field):
    client, store, _ = env
    before = await store.list_agents()
    data = await problem(await client.patch("/api/v1/agents/alice", json=body, headers=H), 422)
    assert data["field"] == field
    assert await store.list_agents() == before and await config_actions(store) == []


async def test_an_unknown_agent_or_group_is_404(env):
    client, _, _ = env
    for method, path, body in (
            ("PATCH", "/api/v1/agents/ghost", {"enabled": False}),
            ("DELETE", "/api/v1/agents/ghost", None),
            ("PATCH", "/api/v1/groups/ghost", {"ring_timeout": 30}),
            ("DELETE", "/api/v1/groups/ghost", None),
            ("PATCH", "/api/v1/groups/sales", {"agents": ["alice", "ghost"]})):
        data = await problem(await client.request(method, path, json=body, headers=H), 404)
        assert "ghost" in data["detail"]


async def test_an_agent_in_groups_is_409_naming_them_then_removed_once_out(env):
    client, store, _ = env
    data = await problem(await client.delete("/api/v1/agents/bob", headers=H), 409)
    assert data["detail"] == "agent 'bob' is in groups sales, support: take it out first"
    r = await client.patch("/api/v1/groups/sales", json={"agents": ["alice"]}, headers=H)
    assert r.status == 200 and (await r.json())["agents"] == ["alice"]
    data = await problem(await client.delete("/api/v1/agents/bob", headers=H), 409)
    assert data["detail"] == "agent 'bob' is in group support: take it out first"
    assert (await client.delete("/api/v1/groups/support", headers=H)).status == 204
    r = await client.delete("/api/v1/agents/bob", headers=H)
    assert r.status == 204 and await r.read() == b""
    assert [a.name for a in await store.list_agents()] == ["alice"]
    assert [a for a, *_ in await config_actions(store)] == [
        "config.group.update", "config.group.remove", "config.agent.remove"]


async def test_a_group_is_edited_and_a_group_in_use_is_409_naming_the_widgets(env):
    client, store, _ = env
    r = await client.patch("/api/v1/groups/sales", json={
        "strategy": "sequential", "ring_timeout": 30, "agents": ["bob", "alice"]}, headers=H)
    assert await r.json() == {"name": "sales", "strategy": "sequential", "ring_timeout": 30,
                              "agents": ["bob", "alice"], "accept_digit": None, "accept_timeout": 10}
    for body, field in (({"agents": []}, "agents"), ({"ring_timeout": 1}, "ring_timeout"),
                        ({"strategy": "x"}, "strategy"), ({"name": "x"}, "name"),
                        ({"agents": ["bob", "bob"]}, "agents")):
        data = await problem(await client.patch("/api/v1/groups/sales", json=body, headers=H),
                             422)
        assert data["field"] == field
    data = await problem(await client.delete("/api/v1/groups/sales", headers=H), 409)
    assert data["detail"] == "group 'sales' is used by widget shop: give it another group first"
    assert [g.name for g in await store.list_groups()] == ["sales", "support"]
    assert await config_actions(store) == [
        ("config.group.update", "group:sales", "strategy=sequential ring=30s agents=bob,alice")]


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
async def test_only_an_admin_token_may(env, role):
    client, store, tokens = env
    h = {"Authorization": f"Bearer {tokens[role]}"}
    for method, path, body in (
            ("GET", "/api/v1/agents", None), ("GET", "/api/v1/groups", None),
            ("PATCH", "/api/v1/agents/alice", {"enabled": False}),
            ("DELETE", "/api/v1/agents/alice", None),
            ("PATCH", "/api/v1/groups/support", {"ring_timeout": 30}),
            ("DELETE", "/api/v1/groups/support", None)):
        await problem(await client.request(method, path, json=body, headers=h), 403)
        await problem(await client.request(method, path, json=body), 401)
    assert len(await store.list_groups()) == 2 and await config_actions(store) == []
    assert all(a.enabled for a in await store.list_agents())


async def test_a_group_takes_an_accept_digit_and_timeout(env):
    client, store, _ = env
    # press-1 to accept: on with a digit, its timeout alone, then off again (null)
    r = await client.patch("/api/v1/groups/sales", json={"accept_digit": "1"}, headers=H)
    assert (await r.json())["accept_digit"] == "1"
    r = await client.patch("/api/v1/groups/sales", json={"accept_timeout": 4}, headers=H)
    assert [(await r.json())[k] for k in ("accept_digit", "accept_timeout")] == ["1", 4]
    r = await client.patch("/api/v1/groups/sales", json={"accept_digit": None}, headers=H)
    assert [(await r.json())[k] for k in ("accept_digit", "accept_timeout")] == [None, 4]
    for body, field in (({"accept_digit": "12"}, "accept_digit"),
                        ({"accept_digit": 1}, "accept_digit"),
                        ({"accept_timeout": 1}, "accept_timeout")):
        data = await problem(await client.patch("/api/v1/groups/sales", json=body,
                                                headers=H), 422)
        assert data["field"] == field, body
    r = await client.post("/api/v1/groups", json={"name": "press", "agents": ["bob"],
                                                  "accept_digit": "#"}, headers=H)
    assert r.status == 201 and (await r.json())["accept_digit"] == "#"
    actions = await config_actions(store)
    assert ("config.group.update", "group:sales", "accept=1/10s") in actions
    assert ("config.group.update", "group:sales", "accept=off") in actions
