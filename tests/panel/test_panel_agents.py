"""The agents page's edits (tests/support/panel.py's seeded panel: alice in "sales", the "shop"
widget's group): an admin edits an agent's endpoint, disables and enables it, edits a group's
strategy, ring timeout and members in order, removes after a confirmation naming what goes;
a refusal is shown on the page with its reason; everyone else gets 403 and nothing changes."""

from __future__ import annotations

import re

import pytest

from callengine.access import Principal, Role
from callengine.model import Agent
from callengine.web.panel.texts import EN, PL
from tests.support.panel import CSRF, user_headers

ADMIN = user_headers("admin")
SETUP = Principal("setup", Role.ADMIN)


async def config_actions(panel) -> list[str]:
    return [e.action for e in await panel.store.audit_entries() if e.action.startswith("config.")]


async def test_the_admin_edits_an_agents_endpoint_and_a_refusal_stays_beside_it(client, panel):
    await panel.store.add_agent(Agent("bob", "PJSIP/agent2"))
    done = await client.post("/panel/agents/alice/edit", data={
        "csrf": CSRF, "endpoint": "PJSIP/desk7"}, headers=ADMIN, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/panel/agents"
    assert [a.endpoint for a in await panel.store.list_agents()] == ["PJSIP/desk7", "PJSIP/agent2"]
    bad = await client.post("/panel/agents/bob/edit", data={"csrf": CSRF, "endpoint": "desk 9"},
                            headers=ADMIN)
    html = await bad.text()
    assert bad.status == 422 and bad.content_type == "text/html"
    field = re.search(r'<input id="edit-agent-bob-endpoint"[^>]*>', html).group(0)
    assert 'value="desk 9"' in field and 'aria-invalid="true"' in field
    assert re.search(r'id="edit-agent-bob-endpoint-error"[^>]*>[^<]*dial string', html)
    other = re.search(r'<input id="edit-agent-alice-endpoint"[^>]*>', html).group(0)
    assert 'value="PJSIP/desk7"' in other and "aria-invalid" not in other  # left alone
    assert (await panel.store.list_agents())[1].endpoint == "PJSIP/agent2"
    missing = await client.post("/panel/agents/ghost/edit", data={
        "csrf": CSRF, "endpoint": "PJSIP/x"}, headers=ADMIN)
    assert missing.status == 404 and missing.content_type == "text/html"
    assert await config_actions(panel) == ["config.agent.update"]


async def test_the_admin_disables_and_enables_an_agent(client, panel):
    page = await (await client.get("/panel/agents", headers=ADMIN)).text()
    assert 'action="/panel/agents/alice/disable"' in page and EN["disabled_note"] in page
    done = await client.post("/panel/agents/alice/disable", data={"csrf": CSRF}, headers=ADMIN,
                             allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/panel/agents"
    assert (await panel.store.list_agents())[0].enabled is False
    page = await (await client.get("/panel/agents", headers=ADMIN)).text()
    assert 'action="/panel/agents/alice/enable"' in page
    await client.post("/panel/agents/alice/enable", data={"csrf": CSRF}, headers=ADMIN)
    assert (await panel.store.list_agents())[0].enabled is True
    assert await config_actions(panel) == ["config.agent.disable", "config.agent.enable"]


async def test_the_admin_pauses_and_resumes_an_agent_and_sees_what_it_is_doing(client, panel):
    page = await (await client.get("/panel/agents", headers=ADMIN)).text()
    assert 'action="/panel/agents/alice/pause"' in page and EN["paused_note"] in page
    assert 'data-agent-state="unknown"' in page  # no engine beside this panel
    done = await client.post("/panel/agents/alice/pause", data={"csrf": CSRF}, headers=ADMIN,
                             allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/panel/agents"
    assert (await panel.store.list_agents())[0].paused is True
    page = await (await client.get("/panel/agents", headers=ADMIN)).text()
    assert 'action="/panel/agents/alice/resume"' in page
    assert f'data-agent-state="paused">{EN["agent_paused"]}<' in page
    refused = await client.post("/panel/agents/alice/resume", data={}, headers=ADMIN)
    assert refused.status == 403  # no CSRF token: nothing changes
    assert (await panel.store.list_agents())[0].paused is True
    await client.post("/panel/agents/alice/resume", data={"csrf": CSRF}, headers=ADMIN)
    assert (await panel.store.list_agents())[0].paused is False
    assert await config_actions(panel) == ["config.agent.pause", "config.agent.resume"]


async def test_a_group_is_edited_with_its_members_numbered_in_ring_order(client, panel):
    for name in ("bob", "carol"):
        await panel.store.add_agent(Agent(name, f"PJSIP/{name}"))
    page = await (await client.get("/panel/agents", headers=ADMIN)).text()
    assert re.search(r'name="position:alice"[^>]*value="1"', page)  # a member, first
    assert re.search(r'name="position:bob"[^>]*value=""', page)  # not a member
    done = await client.post("/panel/groups/sales/edit", data=[
        ("csrf", CSRF), ("strategy", "sequential"), ("ring_timeout", "25"),
        ("position:alice", "2"), ("position:bob", ""), ("position:carol", "1")],
        headers=ADMIN, allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/panel/agents"
    group = await panel.store.get_group("sales")
    assert (group.strategy.value, group.ring_timeout) == ("sequential", 25)
    assert [a.name for a in group.agents] == ["carol", "alice"]
    page = await (await client.get("/panel/agents", headers=ADMIN)).text()
    assert "carol, alice" in page
    assert re.search(r'name="position:carol"[^>]*value="1"', page)
    assert re.search(r'name="position:alice"[^>]*value="2"', page)

    for fields, field in (([("position:alice", ""), ("position:carol", "")], "agents"),
                          ([("position:alice", "first")], "agents"),
                          ([("position:alice", "1"), ("ring_timeout", "2")], "ring_timeout")):
        data = dict([("csrf", CSRF), ("strategy", "ring-all"), ("ring_timeout", "20"), *fields])
        bad = await client.post("/panel/groups/sales/edit", data=data, headers=ADMIN)
        html = await bad.text()
        assert bad.status == 422, fields
        assert re.search(rf'id="edit-group-sales-{field}-error"[^>]*>[^<]+<', html), fields
        assert re.search(r'<details class="card" open>\s*<summary>Edit group sales', html)
    unknown = await client.post("/panel/groups/sales/edit", data={
        "csrf": CSRF, "strategy": "ring-all", "ring_timeout": "20", "position:ghost": "1"},
        headers=ADMIN)
    assert unknown.status == 404 and "ghost" in await unknown.text()
    assert [a.name for a in (await panel.store.get_group("sales")).agents] == ["carol", "alice"]
    assert await config_actions(panel) == ["config.group.update"]


async def test_removing_an_agent_in_a_group_is_refused_with_the_reason_then_done(client, panel):
    confirm = await client.get("/panel/agents/alice/remove", headers=ADMIN)
    html = await confirm.text()
    assert confirm.status == 200 and EN["remove_agent_text"].format(name="alice") in html
    assert 'action="/panel/agents/alice/remove"' in html
    refused = await client.post("/panel/agents/alice/remove", data={"csrf": CSRF}, headers=ADMIN)
    html = await refused.text()
    assert refused.status == 409 and refused.content_type == "text/html"
    assert "agent &#39;alice&#39; is in group sales: take it out first" in html
    assert 'action="/panel/agents/alice/remove"' not in html  # nothing left to confirm
    assert len(await panel.store.list_agents()) == 1

    await panel.services.config.add_agent(SETUP, "zed", "PJSIP/zed")
    done = await client.post("/panel/agents/zed/remove", data={"csrf": CSRF}, headers=ADMIN,
                             allow_redirects=False)
    assert done.status == 303 and done.headers["Location"] == "/panel/agents"
    assert [a.name for a in await panel.store.list_agents()] == ["alice"]
    assert (await client.get("/panel/agents/zed/remove", headers=ADMIN)).status == 404
    assert "config.agent.remove" in await config_actions(panel)


async def test_removing_a_group_a_widget_uses_is_refused_naming_the_widget(client, panel):
    refused = await client.post("/panel/groups/sales/remove", data={"csrf": CSRF},
                                headers=ADMIN)
    html = await refused.text()
    assert refused.status == 409
    assert "group &#39;sales&#39; is used by widget shop: give it another group first" in html
    await panel.services.config.add_group(SETUP, "night", "ring-all", 20, ["alice"])
    confirm = await (await client.get("/panel/groups/night/remove", headers=ADMIN)).text()
    assert EN["remove_group_text"].format(name="night") in confirm
    done = await client.post("/panel/groups/night/remove", data={"csrf": CSRF}, headers=ADMIN,
                             allow_redirects=False)
    assert done.status == 303
    assert [g.name for g in await panel.store.list_groups()] == ["sales"]
    assert await config_actions(panel) == ["config.group.create", "config.group.remove"]


async def test_the_confirmation_speaks_polish(client, panel):
    h = {**ADMIN, "Cookie": "panel_language=pl"}
    html = await (await client.get("/panel/groups/sales/remove", headers=h)).text()
    assert PL["remove_group_text"].format(name="sales") in html and PL["remove_confirm"] in html


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
async def test_only_the_admin_may_edit_disable_or_remove(client, panel, role):
    h = user_headers(role)
    for path, data in (("/panel/agents/alice/edit", {"endpoint": "PJSIP/x"}),
                       ("/panel/agents/alice/disable", {}),
                       ("/panel/agents/alice/remove", {}),
                       ("/panel/groups/sales/edit", {"strategy": "ring-all",
                                                     "ring_timeout": "20",
                                                     "position:alice": "1"}),
                       ("/panel/groups/sales/remove", {})):
        response = await client.post(path, data={"csrf": CSRF, **data}, headers=h)
        assert response.status == 403, path
        assert (await client.get(path, headers=h)).status in (403, 405), path
    for path in ("/panel/agents/alice/remove", "/panel/groups/sales/remove"):
        assert (await client.get(path, headers=h)).status == 403
    assert await config_actions(panel) == []
    assert (await panel.store.list_agents())[0] == Agent("alice", "PJSIP/agent1")


@pytest.mark.parametrize("texts", [EN, PL])
async def test_a_group_asks_its_agents_to_press_a_key_and_an_empty_key_turns_it_off(
        client, panel, texts):
    headers = {**ADMIN, "Cookie": "panel_language=pl"} if texts is PL else ADMIN
    page = await (await client.get("/panel/agents", headers=headers)).text()
    assert texts["accept_digit"] in page and 'id="edit-group-sales-accept_digit"' in page
    base = [("csrf", CSRF), ("strategy", "sequential"), ("ring_timeout", "20"),
            ("position:alice", "1")]
    done = await client.post("/panel/groups/sales/edit", data=[
        *base, ("accept_digit", "1"), ("accept_timeout", "7")], headers=ADMIN,
        allow_redirects=False)
    assert done.status == 303
    group = await panel.store.get_group("sales")
    assert (group.accept_digit, group.accept_timeout) == ("1", 7)
    assert "1 (7 s)" in await (await client.get("/panel/agents", headers=ADMIN)).text()
    bad = await client.post("/panel/groups/sales/edit", data=[
        *base, ("accept_digit", "x"), ("accept_timeout", "7")], headers=ADMIN)
    assert bad.status == 422
    assert 'id="edit-group-sales-accept_digit-error"' in await bad.text()
    await client.post("/panel/groups/sales/edit", data=[
        *base, ("accept_digit", ""), ("accept_timeout", "7")], headers=ADMIN)
    assert (await panel.store.get_group("sales")).accept_digit is None
