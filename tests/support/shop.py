"""A widget "shop" with one lead, for the tests of roles and masking (API and CLI)."""

from __future__ import annotations

import time

from callengine.flow import Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.storage import Store

ADMIN = "admin-token-0123456789abcdef"


async def shop_with_lead(store: Store):
    """A widget "shop" and one lead for +48 601 234 567."""
    await store.add_agent(Agent("alice", "PJSIP/agent1"))
    await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
    widget = await store.add_widget("shop", "Shop", widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "challenge": "off"}), time.time())
    return await store.create_lead(
        widget, phone_e164="+48601234567", phone_region="PL", phone_kind="mobile",
        name=None, email=None, consent=Consent(False, False, "v1"), now=time.time())


async def disabled_long_ago(store: Store, widget_id: str, now: float | None = None) -> None:
    """The widget disabled two minutes before `now` (the services' clock; the time by default):
    removable now (if no lead names it)."""
    async with store._transaction() as db:
        await db.execute("UPDATE widgets SET disabled_at = ? WHERE id = ?",
                         ((time.time() if now is None else now) - 120, widget_id))
    store._config_changed()
