"""Agents and groups edited, disabled and removed at the services level (a real store): each
change validated as a new one is, audited with what it set, refused to all but the admin, and
a removal refused while in use, with the reason naming what uses it."""

from __future__ import annotations

import pytest

from callengine.access import Forbidden, Principal, Role
from callengine.errors import Conflict, InvalidInput, NotFound
from callengine.flow import Strategy
from callengine.model import widget_settings_from_input
from callengine.services import Services
from callengine.storage import Store
from tests.support.engine import DATA_KEY

ADMIN = Principal("ops", Role.ADMIN)
OTHERS = [Principal("sup", Role.SUPERVISOR), Principal("ag", Role.AGENT),
          Principal("view", Role.VIEWER)]
NOW = 1_800_000_000.0


@pytest.fixture
async def env(tmp_path):
    """alice and bob in "sales" and "support", carol in none; the "shop" widget uses sales."""
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        services = Services(store, clock=lambda: NOW, channel="test")
        config = services.config
        for name, endpoint in (("alice", "PJSIP/a1"), ("bob", "PJSIP/b1"),
                               ("carol", "PJSIP/c1")):
            await config.add_agent(ADMIN, name, endpoint)
        await config.add_group(ADMIN, "sales", "ring-all", 20, ["alice", "bob"])
        await config.add_group(ADMIN, "support", "sequential", 15, ["bob"])
        await config.add_widget(ADMIN, "shop", None, {"group": "sales"})
        yield config, store


async def audit(store: Store, since: int = 6) -> list[tuple[str, str, str]]:
    """The entries after the fixture's six."""
    return [(e.action, e.target, e.detail) for e in (await store.audit_entries())[since:]]


async def test_an_agents_endpoint_is_edited_validated_and_audited(env):
    config, store = env
    agent = await config.update_agent(ADMIN, "alice", endpoint="PJSIP/a2")
    assert (agent.endpoint, agent.enabled) == ("PJSIP/a2", True)
    assert [a.endpoint for a in await store.list_agents()] == ["PJSIP/a2", "PJSIP/b1", "PJSIP/c1"]
    for bad in ("nothing", "PJSIP/", 42, "PJSIP/a b"):
        with pytest.raises(InvalidInput) as refused:
            await config.update_agent(ADMIN, "alice", endpoint=bad)
        assert refused.value.field == "endpoint"
    with pytest.raises(InvalidInput):
        await config.update_agent(ADMIN, "alice")  # nothing to change
    with pytest.raises(NotFound):
        await config.update_agent(ADMIN, "nobody", endpoint="PJSIP/x")
    assert (await store.get_group("sales")).agents[0].endpoint == "PJSIP/a2"
    assert await audit(store) == [("config.agent.update", "agent:alice", "PJSIP/a2")]


async def test_an_agent_is_disabled_and_enabled_each_audited(env):
    config, store = env
    assert (await config.update_agent(ADMIN, "bob", enabled=False)).enabled is False
    assert [a.enabled for a in (await store.get_group("sales")).agents] == [True, False]
    with pytest.raises(InvalidInput) as refused:
        await config.update_agent(ADMIN, "bob", enabled="no")
    assert refused.value.field == "enabled"
    both = await config.update_agent(ADMIN, "bob", endpoint="PJSIP/b2", enabled=True)
    assert (both.endpoint, both.enabled) == ("PJSIP/b2", True)
    assert await audit(store) == [
        ("config.agent.disable", "agent:bob", ""),
        ("config.agent.update", "agent:bob", "PJSIP/b2"),
        ("config.agent.enable", "agent:bob", "")]


async def test_an_agent_in_groups_is_not_removed_and_the_reason_names_them(env):
    config, store = env
    with pytest.raises(Conflict) as refused:
        await config.remove_agent(ADMIN, "bob")
    assert str(refused.value) == "agent 'bob' is in groups sales, support: take it out first"
    with pytest.raises(Conflict, match="agent 'alice' is in group sales: take it out first"):
        await config.remove_agent(ADMIN, "alice")
    await config.remove_agent(ADMIN, "carol")
    with pytest.raises(NotFound):
        await config.remove_agent(ADMIN, "carol")
    assert [a.name for a in await store.list_agents()] == ["alice", "bob"]
    assert await audit(store) == [("config.agent.remove", "agent:carol", "PJSIP/c1")]


async def test_a_group_is_edited_its_members_in_the_order_given(env):
    config, store = env
    group = await config.update_group(ADMIN, "sales", agents=["carol", "bob", "alice"])
    assert [a.name for a in group.agents] == ["carol", "bob", "alice"]
    assert (group.strategy, group.ring_timeout) == (Strategy.RING_ALL, 20)  # left as they were
    group = await config.update_group(ADMIN, "sales", strategy="sequential", ring_timeout=30)
    assert (group.strategy, group.ring_timeout) == (Strategy.SEQUENTIAL, 30)
    assert [a.name for a in group.agents] == ["carol", "bob", "alice"]
    assert await store.get_group("sales") == group
    # bob taken out of both groups: now he may go
    await config.update_group(ADMIN, "sales", agents=["alice"])
    await config.update_group(ADMIN, "support", agents=["carol"])
    await config.remove_agent(ADMIN, "bob")
    assert await audit(store) == [
        ("config.group.update", "group:sales", "agents=carol,bob,alice"),
        ("config.group.update", "group:sales", "strategy=sequential ring=30s"),
        ("config.group.update", "group:sales", "agents=alice"),
        ("config.group.update", "group:support", "agents=carol"),
        ("config.agent.remove", "agent:bob", "PJSIP/b1")]


@pytest.mark.parametrize("change, field", [
    ({"strategy": "round-robin-ish"}, "strategy"),
    ({"ring_timeout": 2}, "ring_timeout"),
    ({"ring_timeout": "20"}, "ring_timeout"),
    ({"agents": []}, "agents"),
    ({"agents": "alice"}, "agents"),
    ({"agents": ["alice", "alice"]}, "agents"),
    ({}, "agents"),
])
async def test_a_refused_group_edit_changes_nothing(env, change, field):
    config, store = env
    before = await store.get_group("sales")
    with pytest.raises(InvalidInput) as refused:
        await config.update_group(ADMIN, "sales", **change)
    assert refused.value.field == field
    assert await store.get_group("sales") == before and await audit(store) == []


async def test_an_unknown_member_or_group_is_not_found_and_nothing_changes(env):
    config, store = env
    before = await store.get_group("sales")
    with pytest.raises(NotFound, match="nobody"):
        await config.update_group(ADMIN, "sales", ring_timeout=40, agents=["carol", "nobody"])
    assert await store.get_group("sales") == before  # not even the ring timeout
    with pytest.raises(NotFound):
        await config.update_group(ADMIN, "nope", ring_timeout=40)
    with pytest.raises(NotFound):
        await config.remove_group(ADMIN, "nope")
    assert await audit(store) == []


async def test_a_group_a_widget_uses_is_not_removed_and_the_reason_names_the_widgets(env):
    config, store = env
    await store.add_widget("shop2", "Shop 2", widget_settings_from_input({"group": "sales"}), NOW)
    with pytest.raises(Conflict) as refused:
        await config.remove_group(ADMIN, "sales")
    assert str(refused.value) == ("group 'sales' is used by widgets shop, shop2:"
                                  " give them another group first")
    assert [g.name for g in await store.list_groups()] == ["sales", "support"]
    await config.remove_group(ADMIN, "support")
    assert [g.name for g in await store.list_groups()] == ["sales"]
    await config.remove_agent(ADMIN, "carol")  # never in a group
    assert await audit(store) == [
        ("config.group.remove", "group:support", "sequential ring=15s agents=bob"),
        ("config.agent.remove", "agent:carol", "PJSIP/c1")]


@pytest.mark.parametrize("who", OTHERS, ids=lambda p: p.role.value)
async def test_only_the_admin_edits_disables_or_removes(env, who):
    config, store = env
    before = (await store.list_agents(), await store.list_groups())
    for act in (lambda: config.update_agent(who, "alice", endpoint="PJSIP/x"),
                lambda: config.update_agent(who, "alice", enabled=False),
                lambda: config.remove_agent(who, "carol"),
                lambda: config.update_group(who, "sales", agents=["carol"]),
                lambda: config.remove_group(who, "support"),
                lambda: config.agents(who), lambda: config.groups(who)):
        with pytest.raises(Forbidden):
            await act()
    assert (await store.list_agents(), await store.list_groups()) == before
    assert await audit(store) == []


async def test_an_agents_endpoint_is_not_changed_while_the_engine_holds_it(env):
    """The engine beside the services knows agents by endpoint: a new one while the old is on
    a call would be rung for another lead. Disabling is fine then (the call goes on)."""
    config, store = env
    busy = Services(store, clock=lambda: NOW, channel="test",
                    agent_activity=lambda: {"PJSIP/a1": "on-call", "PJSIP/b1": "ringing"}).config
    with pytest.raises(Conflict, match="agent 'alice' is on a call: change its endpoint once"):
        await busy.update_agent(ADMIN, "alice", endpoint="PJSIP/a2")
    with pytest.raises(Conflict, match="agent 'bob' is being rung for a call"):
        await busy.update_agent(ADMIN, "bob", endpoint="PJSIP/b2", enabled=False)
    assert (await busy.update_agent(ADMIN, "alice", endpoint="PJSIP/a1")).endpoint == "PJSIP/a1"
    assert (await busy.update_agent(ADMIN, "alice", enabled=False)).enabled is False
    assert (await busy.update_agent(ADMIN, "carol", endpoint="PJSIP/c2")).endpoint == "PJSIP/c2"
    assert [a.endpoint for a in await store.list_agents()] == ["PJSIP/a1", "PJSIP/b1", "PJSIP/c2"]
