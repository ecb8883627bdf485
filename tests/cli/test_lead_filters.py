"""`callengine lead list --widget --status --outcome --from --to` over the seeded set
(tests/support/lead_filters.py): the leads the service's filters take, newest first; a bad
date refused naming its option (exit 2), an unknown outcome refused by argparse."""

from __future__ import annotations

import asyncio
import json

import pytest

from callengine import cli
from callengine.storage import Store
from tests.support.engine import DATA_KEY, DATA_KEY_B64
from tests.support.lead_filters import NEWEST_FIRST, add_widgets, seed_leads
from tests.support.shop import ADMIN


@pytest.fixture
def base(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLENGINE_ARI_PASSWORD", "x")
    monkeypatch.setenv("CALLENGINE_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("CALLENGINE_DATA_KEY", DATA_KEY_B64)
    config = tmp_path / "c.toml"
    config.write_text('[store]\ndatabase = "ce.db"\nkeystore = "ks.db"\n')

    async def seed():
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as s:
            await add_widgets(s)
            return await seed_leads(s)

    return ["--config", str(config), "--role", "viewer"], asyncio.run(seed())


def listed(base, capsys, *options: str) -> list[str]:
    argv, _ = base
    assert cli.main([*argv, "lead", "list", *options]) == 0
    return [lead["id"] for lead in json.loads(capsys.readouterr().out)]


@pytest.mark.parametrize("options, names", [
    ((), "abcdef"),
    (("--outcome", "connected"), "ac"),
    (("--widget", "shop", "--status", "done", "--from", "2026-11-02"), "bf"),
    (("--from", "2026-11-02", "--to", "2026-11-03"), "bc"),
    (("--status", "queued", "--outcome", "agents-no-answer", "--to", "2026-11-04"), "d"),
    (("--from", "2026-11-03T12:00:00Z", "--limit", "1"), "f"),
])
def test_lead_list_filters(base, capsys, options, names):
    _, ids = base
    assert listed(base, capsys, *options) == [ids[n] for n in NEWEST_FIRST if n in names]


def test_a_bad_filter_is_refused(base, capsys):
    argv, _ = base
    assert cli.main([*argv, "lead", "list", "--from", "2026-11-31"]) == 2
    assert capsys.readouterr().err.startswith("callengine: invalid from: ")
    assert cli.main([*argv, "lead", "list", "--from", "2026-11-03", "--to", "2026-11-01"]) == 2
    assert "callengine: invalid to: must be later than from" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        cli.main([*argv, "lead", "list", "--outcome", "nope"])
    assert refused.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err
