"""A set of leads to filter (tests of the leads' filters through the services, the API, the
CLI and the panel): two widgets, leads created on known moments of November 2026 (UTC), with
outcomes made as the engine makes them (an attempt started, then finished: closed, or queued
again for a retry)."""

from __future__ import annotations

from datetime import datetime, timezone

from callengine.flow import Outcome, Result, Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.storage import Store


def at(text: str) -> float:
    """A UTC moment as Unix seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


# name: (widget, created at (UTC), outcome of its one attempt or None, queued again after it)
LEADS = {
    "a": ("shop", "2026-11-01 09:00:00", Outcome.CONNECTED, False),
    "b": ("shop", "2026-11-02 23:59:59", Outcome.VISITOR_BUSY, False),
    "c": ("desk", "2026-11-02 00:00:00", Outcome.CONNECTED, False),
    "d": ("desk", "2026-11-03 12:00:00", Outcome.AGENTS_NO_ANSWER, True),
    "e": ("shop", "2026-11-03 00:00:00", None, False),
    "f": ("shop", "2026-11-04 08:00:00", Outcome.FAILED, False),
}
NEWEST_FIRST = sorted(LEADS, key=lambda name: LEADS[name][1], reverse=True)


async def add_widgets(store: Store, *, shop: bool = True) -> None:
    """The agent, group and widgets the set needs ("shop" too unless it exists already)."""
    if shop:
        await store.add_agent(Agent("alice", "PJSIP/agent1"))
        await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
    for widget_id in ("shop", "desk") if shop else ("desk",):
        await store.add_widget(widget_id, widget_id.title(), widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"], "challenge": "off",
             "duplicate_window_s": 0}), at("2026-10-01 00:00:00"))


async def seed_leads(store: Store) -> dict[str, str]:
    """LEADS in the store (its widgets there already): name → lead id."""
    ids = {}
    for i, (name, (widget_id, created, outcome, retry)) in enumerate(LEADS.items()):
        widget = await store.get_widget(widget_id)
        t = at(created)
        lead = await store.create_lead(
            widget, phone_e164=f"+4860123450{i}", phone_region="PL", phone_kind="mobile",
            name=None, email=None, consent=Consent(False, False, "v1"), now=t)
        ids[name] = lead.id
        if outcome is None:
            continue
        attempt = await store.start_attempt(lead.id, t + 5)
        connected = outcome is Outcome.CONNECTED
        await store.finish_attempt(attempt, Result(
            outcome, cause="normal clearing" if connected else "no answer",
            q850=16 if connected else 19, agent="PJSIP/agent1" if connected else None,
            talk_s=30.0 if connected else None, connected=connected),
            t + 60, retry_at=t + 600 if retry else None)
    return ids
