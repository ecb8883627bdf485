"""The live board's snapshot: each agent's availability from the engine beside the services
(disabled, on a call, ringing, held, free; unknown with no engine), masked calls only."""

from __future__ import annotations

from callengine.access import Principal, Role
from callengine.model import Agent
from callengine.services import Services
from callengine.storage import Store
from tests.support.engine import DATA_KEY
from tests.support.shop import shop_with_lead

VIEWER = Principal("view", Role.VIEWER)


async def test_each_agent_shows_what_the_engine_has_it_doing(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        lead = await shop_with_lead(store)
        for name, enabled in (("bob", True), ("carol", True), ("dave", False), ("erin", True)):
            await store.add_agent(Agent(name, f"PJSIP/{name}", enabled))
        await store.start_attempt(lead.id, 1_800_000_000.0)
        activity = {"PJSIP/bob": "on-call", "PJSIP/carol": "ringing", "PJSIP/dave": "ringing"}
        board = await Services(store, agent_activity=lambda: activity).board.snapshot(VIEWER)
        states = {a["name"]: a["state"] for a in board["agents"]}
        assert {k: states[k] for k in ("bob", "carol", "dave", "erin")} == {
            "bob": "on-call", "carol": "ringing", "dave": "disabled", "erin": "free"}
        [call] = board["calls"]
        assert call["lead"] == lead.id and call["phone"] == lead.phone_masked
        assert lead.phone_e164 not in repr(board)
        without = await Services(store).board.snapshot(VIEWER)  # no engine in this process
        assert {a["name"]: a["state"] for a in without["agents"]}["bob"] == "unknown"
