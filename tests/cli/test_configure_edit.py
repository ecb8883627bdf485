"""`callengine agent edit|disable|enable|pause|resume|remove` and `group edit|remove`: through the
configuration service, with the CLI's exit codes (0 done, 1 not found or refused while in use,
2 invalid, 3 not allowed) and the service's reason on stderr."""

from __future__ import annotations

import json

from callengine import cli
from tests.cli import test_roles
from tests.cli.test_roles import ROLES_TABLE, as_user

shop = test_roles.shop  # the fixture: alice in "sales", the "shop" widget's group


def listed(base, capsys, what: str) -> list[dict]:
    capsys.readouterr()
    assert cli.main([*base, what, "list"]) == 0
    return json.loads(capsys.readouterr().out)


def audited(base, capsys) -> list[str]:
    capsys.readouterr()
    assert cli.main([*base, "audit", "list"]) == 0
    out = capsys.readouterr().out
    return [a for a in ("config.agent.update", "config.agent.disable", "config.agent.enable",
                        "config.agent.pause", "config.agent.resume", "config.agent.remove", "config.group.update", "config.group.remove")
            if a in out]


def test_an_agent_is_edited_disabled_enabled_and_removed(shop, monkeypatch, capsys):
    configure, _, _ = shop
    base = configure()
    as_user(monkeypatch, "bob")
    assert cli.main([*base, "agent", "edit", "alice", "--endpoint", "PJSIP/desk7"]) == 0
    assert "agent alice: endpoint PJSIP/desk7" in capsys.readouterr().out
    assert cli.main([*base, "agent", "disable", "alice"]) == 0
    assert "alice disabled" in capsys.readouterr().out
    assert listed(base, capsys, "agent") == [
        {"name": "alice", "endpoint": "PJSIP/desk7", "enabled": False, "paused": False}]
    assert cli.main([*base, "agent", "enable", "alice"]) == 0
    assert listed(base, capsys, "agent")[0]["enabled"] is True
    assert cli.main([*base, "agent", "edit", "alice", "--endpoint", "desk7"]) == 2
    assert "invalid endpoint: expected a dial string" in capsys.readouterr().err
    assert cli.main([*base, "agent", "disable", "ghost"]) == 1
    assert "no agent 'ghost'" in capsys.readouterr().err
    assert cli.main([*base, "agent", "pause", "alice"]) == 0
    assert "agent alice paused: not rung until resumed" in capsys.readouterr().out
    assert listed(base, capsys, "agent")[0]["paused"] is True
    assert cli.main([*base, "agent", "resume", "alice"]) == 0
    assert "agent alice resumed" in capsys.readouterr().out
    assert listed(base, capsys, "agent")[0]["paused"] is False
    assert cli.main([*base, "agent", "pause", "ghost"]) == 1
    capsys.readouterr()

    assert cli.main([*base, "agent", "remove", "alice"]) == 1
    assert capsys.readouterr().err.strip() == (
        "callengine: agent 'alice' is in group sales: take it out first")
    assert cli.main([*base, "agent", "add", "zed", "PJSIP/zed"]) == 0
    assert cli.main([*base, "agent", "remove", "zed"]) == 0
    assert "agent zed removed" in capsys.readouterr().out
    assert [a["name"] for a in listed(base, capsys, "agent")] == ["alice"]
    assert audited(base, capsys) == ["config.agent.update", "config.agent.disable",
                                     "config.agent.enable", "config.agent.pause",
                                     "config.agent.resume", "config.agent.remove"]


def test_a_group_is_edited_and_removed_only_when_no_widget_uses_it(shop, monkeypatch, capsys):
    configure, _, _ = shop
    base = configure()
    as_user(monkeypatch, "bob")
    assert cli.main([*base, "agent", "add", "zed", "PJSIP/zed"]) == 0
    assert cli.main([*base, "group", "edit", "sales", "--agents", "zed,alice",
                     "--strategy", "sequential"]) == 0
    assert "group sales: sequential, ring 20s, zed, alice" in capsys.readouterr().out
    assert cli.main([*base, "group", "edit", "sales", "--ring-timeout", "45"]) == 0
    assert listed(base, capsys, "group") == [
        {"name": "sales", "strategy": "sequential", "ring_timeout": 45, "agents": ["zed", "alice"],
         "accept_digit": None, "accept_timeout": 10}]
    assert cli.main([*base, "group", "edit", "sales", "--accept-digit",
                     "--accept-timeout", "5"]) == 0
    assert "press 1 within 5s" in capsys.readouterr().out
    assert cli.main([*base, "group", "edit", "sales", "--accept-digit", "off"]) == 0
    assert "press" not in capsys.readouterr().out
    for bad, code, message in ((["--agents", ""], 2, "invalid agents"),
                               (["--ring-timeout", "1"], 2, "invalid ring_timeout"),
                               (["--strategy", "randomly"], 2, "invalid strategy"),
                               (["--agents", "alice,ghost"], 1, "no agent 'ghost'"),
                               ([], 2, "invalid agents: give a strategy")):
        assert cli.main([*base, "group", "edit", "sales", *bad]) == code, bad
        assert message in capsys.readouterr().err
    assert listed(base, capsys, "group")[0]["agents"] == ["zed", "alice"]  # nothing changed

    assert cli.main([*base, "group", "remove", "sales"]) == 1
    assert capsys.readouterr().err.strip() == (
        "callengine: group 'sales' is used by widget shop: give it another group first")
    assert cli.main([*base, "group", "add", "night", "--agents", "zed"]) == 0
    assert cli.main([*base, "group", "remove", "night"]) == 0
    assert "group night removed" in capsys.readouterr().out
    assert cli.main([*base, "group", "remove", "night"]) == 1
    assert [g["name"] for g in listed(base, capsys, "group")] == ["sales"]
    assert audited(base, capsys) == ["config.group.update", "config.group.remove"]


def test_only_an_admin_may(shop, monkeypatch, capsys):
    configure, _, _ = shop
    base = configure(ROLES_TABLE)
    as_user(monkeypatch, "alice")  # at most a supervisor
    for command in (["agent", "edit", "alice", "--endpoint", "PJSIP/x"],
                    ["agent", "disable", "alice"], ["agent", "enable", "alice"],
                    ["agent", "pause", "alice"], ["agent", "resume", "alice"],
                    ["agent", "remove", "alice"], ["group", "edit", "sales", "--agents", "alice"],
                    ["group", "remove", "sales"]):
        assert cli.main([*base, *command]) == 3, command
        assert "not allowed" in capsys.readouterr().err
    as_user(monkeypatch, "root")
    assert listed(configure(), capsys, "agent") == [
        {"name": "alice", "endpoint": "PJSIP/agent1", "enabled": True, "paused": False}]
