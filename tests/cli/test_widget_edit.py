"""`callengine widget show|edit|disable|enable|remove`: the same service as the API and the
panel (settings merged, refusals with their exit codes, removal refused while leads name it)."""

from __future__ import annotations

import asyncio
import json

from callengine import cli
from callengine.storage import Store
from tests.cli import test_roles
from tests.cli.test_roles import as_user
from tests.support.engine import DATA_KEY
from tests.support.shop import disabled_long_ago

shop = test_roles.shop  # the fixture: widget "shop" with one lead


def actions(tmp_path) -> list[str]:
    async def read() -> list[str]:
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as s:
            return [e.action for e in await s.audit_entries()]
    return asyncio.run(read())


def test_widget_show_and_edit(shop, monkeypatch, capsys, tmp_path):
    configure, _, _ = shop
    base = configure()
    as_user(monkeypatch, "bob")
    assert cli.main([*base, "widget", "show", "shop"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["enabled"] is True and shown["settings"]["allowed_regions"] == ["PL"]
    assert cli.main([*base, "widget", "edit", "shop", "--name", "Shop PL", "--regions", "PL,DE",
                     "--settings", '{"colour": "#00AA00", "ask_email": true}']) == 0
    edited = json.loads(capsys.readouterr().out)
    assert edited["name"] == "Shop PL" and edited["public_key"] == shown["public_key"]
    assert edited["settings"]["allowed_regions"] == ["PL", "DE"]
    assert edited["settings"]["colour"] == "#00aa00" and edited["settings"]["ask_email"]
    assert edited["settings"]["group"] == "sales"  # kept
    assert cli.main([*base, "widget", "edit", "shop", "--settings", '{"colour": "green"}']) == 2
    assert "invalid colour" in capsys.readouterr().err
    assert cli.main([*base, "widget", "edit", "shop", "--group", "nobody"]) == 1
    assert cli.main([*base, "widget", "edit", "shop", "--settings", "{nope"]) == 2
    assert cli.main([*base, "widget", "show", "nope"]) == 1
    assert cli.main([*base, "--role", "supervisor", "widget", "edit", "shop",
                     "--name", "x"]) == 3
    assert actions(tmp_path) == ["config.widget.update"]


def test_widget_disable_enable_remove(shop, monkeypatch, capsys, tmp_path):
    configure, _, _ = shop
    base = configure()
    as_user(monkeypatch, "bob")
    assert cli.main([*base, "widget", "disable", "shop"]) == 0
    assert "still called" in capsys.readouterr().out
    assert cli.main([*base, "widget", "show", "shop"]) == 0
    assert json.loads(capsys.readouterr().out)["enabled"] is False
    assert cli.main([*base, "widget", "enable", "shop"]) == 0
    capsys.readouterr()
    assert cli.main([*base, "widget", "remove", "shop"]) == 1  # it has a lead
    assert "widget 'shop' has 1 lead: disable it instead" in capsys.readouterr().err
    assert cli.main([*base, "widget", "add", "spare", "--group", "sales", "-q"]) == 0
    capsys.readouterr()
    assert cli.main([*base, "widget", "remove", "spare"]) == 1
    assert "is enabled: disable it first" in capsys.readouterr().err
    assert cli.main([*base, "widget", "disable", "spare"]) == 0
    capsys.readouterr()
    assert cli.main([*base, "widget", "remove", "spare"]) == 1  # a request may be in flight
    assert "was disabled only now: it can be removed in" in capsys.readouterr().err

    async def long_ago() -> None:
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as s:
            await disabled_long_ago(s, "spare")
    asyncio.run(long_ago())
    assert cli.main([*base, "widget", "remove", "spare"]) == 0
    assert "removed" in capsys.readouterr().out
    assert cli.main([*base, "widget", "show", "spare"]) == 1
    assert actions(tmp_path) == ["config.widget.disable", "config.widget.enable",
                                 "config.widget.create", "config.widget.disable",
                                 "config.widget.remove"]
