"""Roles, masking and the audit log through the CLI."""

from __future__ import annotations

from callengine import cli
from callengine.storage import Store
from tests.support.engine import DATA_KEY, DATA_KEY_B64
from tests.support.shop import ADMIN, shop_with_lead


def test_cli_roles_unmask_and_audit_verify(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CALLENGINE_ARI_PASSWORD", "x")
    monkeypatch.setenv("CALLENGINE_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("CALLENGINE_DATA_KEY", DATA_KEY_B64)
    monkeypatch.setenv("CALLENGINE_ACTOR", "ops-anna")
    config = tmp_path / "c.toml"
    config.write_text('[store]\ndatabase = "ce.db"\nkeystore = "ks.db"\n')

    import asyncio

    async def seed() -> str:
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
            return (await shop_with_lead(store)).id

    lead_id = asyncio.run(seed())
    base = ["--config", str(config)]
    assert cli.main([*base, "lead", "show", lead_id]) == 0
    assert "+48 *** *** 567" in capsys.readouterr().out
    assert cli.main([*base, "--role", "viewer", "lead", "show", lead_id, "--unmask"]) == 3
    assert "may not numbers.unmask" in capsys.readouterr().err
    assert cli.main([*base, "--role", "supervisor", "lead", "show", lead_id, "--unmask"]) == 0
    assert "+48601234567" in capsys.readouterr().out
    assert cli.main([*base, "audit", "verify"]) == 0
    assert "intact: 1 entries" in capsys.readouterr().out
    assert cli.main([*base, "audit", "list"]) == 0
    out = capsys.readouterr().out
    assert '"actor": "ops-anna"' in out and '"action": "numbers.unmask"' in out
