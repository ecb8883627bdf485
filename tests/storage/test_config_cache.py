"""The store's short cache of what every visitor request reads (its widget by key, the clause
its lead names): a change through the same Store is seen at once; one made by another process
(the CLI's Store on the same files) within CONFIG_CACHE_S; a refusal is cached as well, and
seen to end as soon as the cache does."""

from __future__ import annotations

import asyncio
import time

import pytest

from callengine.errors import NotFound
from callengine.flow import Strategy
from callengine.model import Agent, widget_settings_from_input
from callengine.storage import Store, base
from tests.support.engine import DATA_KEY


def _clause(version: str, text: str) -> dict:
    return {"widget_id": "shop", "language": "en", "version": version, "text": text,
            "sha256": "0" * 64, "privacy_url": "https://shop.example/privacy",
            "notice_version": None, "notice_text": None, "created_at": time.time()}


async def test_clause_and_widget_reads_follow_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "CONFIG_CACHE_S", 0.2)
    database, keystore = tmp_path / "ce.db", tmp_path / "ks.db"
    async with Store.open(database, DATA_KEY, keystore=keystore) as engine:
        await engine.add_agent(Agent("alice", "PJSIP/agent1"))
        await engine.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
        widget = await engine.add_widget("shop", "Shop", widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"]}), time.time())
        assert (await engine.get_widget_by_key(widget.public_key)).id == "shop"
        assert await engine.clause_for_lead("shop", ("en",), "v1") is None  # no clauses yet

        await engine.put_clause(_clause("v1", "first text"))  # this Store: seen at once
        found = await engine.clause_for_lead("shop", ("pl", "en"), "v1")
        assert found["text"] == "first text" and found["language"] == "en"
        with pytest.raises(NotFound):
            await engine.clause_for_lead("shop", ("en",), "v2")

        async with Store.open(database, DATA_KEY, keystore=keystore) as cli:
            await cli.put_clause(_clause("v2", "second text"))
            other = await cli.add_widget("blog", "Blog", widget_settings_from_input(
                {"group": "sales", "allowed_regions": ["PL"]}), time.time())
        with pytest.raises(NotFound):  # the refusal is still cached: another process's write
            await engine.clause_for_lead("shop", ("en",), "v2")
        await asyncio.sleep(0.25)
        assert (await engine.clause_for_lead("shop", ("en",), "v2"))["text"] == "second text"
        assert (await engine.get_widget_by_key(other.public_key)).id == "blog"
        with pytest.raises(NotFound):
            await engine.get_widget_by_key("wk_nobody")
