"""`callengine webhook …`: an endpoint added (its secret printed once), listed without it,
rotated, its deliveries listed and replayed; a viewer refused."""

from __future__ import annotations

import json

from callengine import cli
from tests.cli import test_roles
from tests.cli.test_roles import as_user

shop = test_roles.shop  # the fixture


def test_webhook_add_list_rotate_deliveries_replay(shop, monkeypatch, capsys):
    configure, _, _ = shop
    base = configure()
    as_user(monkeypatch, "bob")
    assert cli.main([*base, "webhook", "add", "https://crm.example/hook",
                     "--event", "lead.done", "--event", "attempt.finished"]) == 0
    out = capsys.readouterr().out
    shown, secret = out.rsplit("}", 1)
    made = json.loads(shown + "}")
    assert secret.strip().startswith("whsec_") and made["events"] == ["lead.done",
                                                                      "attempt.finished"]
    assert cli.main([*base, "webhook", "list"]) == 0
    listed = capsys.readouterr().out
    assert made["id"] in listed and "whsec_" not in listed
    assert cli.main([*base, "webhook", "rotate", made["id"], "--grace", "60"]) == 0
    rotated = capsys.readouterr().out
    assert "whsec_" in rotated and secret.strip() not in rotated
    assert cli.main([*base, "webhook", "update", made["id"], "--enabled", "no"]) == 0
    assert json.loads(capsys.readouterr().out)["enabled"] is False
    assert cli.main([*base, "webhook", "deliveries", "--status", "dead"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main([*base, "webhook", "replay", "--endpoint", made["id"]]) == 0
    assert "0 delivery(ies)" in capsys.readouterr().out
    assert cli.main([*base, "--role", "viewer", "webhook", "list"]) != 0
    assert cli.main([*base, "webhook", "remove", made["id"]]) == 0
    assert cli.main([*base, "webhook", "list"]) == 0
    assert made["id"] not in capsys.readouterr().out.split("removed")[-1]
