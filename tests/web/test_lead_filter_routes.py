"""GET /api/v1/leads filtered by widget, status, outcome and creation date (from inclusive, to
exclusive) over the seeded set (tests/support/lead_filters.py), a refused filter a 422 problem
naming its parameter, and the spec's enums the code's."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.model import LEAD_OUTCOMES, LEAD_STATUSES
from tests.support.lead_filters import NEWEST_FIRST, add_widgets, seed_leads
from tests.support.panel import ADMIN_TOKEN, seeded_panel
from tests.web.test_openapi import load_spec

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NOVEMBER = {"from": "2026-11-01", "to": "2026-12-01"}  # the set's month (not the panel's lead)


@pytest.fixture
async def api(tmp_path):
    async with seeded_panel(tmp_path) as panel:
        await add_widgets(panel.store, shop=False)
        ids = await seed_leads(panel.store)
        async with TestClient(TestServer(panel.app)) as client:
            yield client, ids, panel


async def listed(client, **query) -> list[str]:
    response = await client.get("/api/v1/leads", params=query, headers=AUTH)
    assert response.status == 200, await response.text()
    return [lead["id"] for lead in (await response.json())["leads"]]


def named(ids: dict[str, str], names: str) -> list[str]:
    return [ids[name] for name in NEWEST_FIRST if name in names]


@pytest.mark.parametrize("query, names", [
    ({**NOVEMBER}, "abcdef"),
    ({**NOVEMBER, "outcome": "connected"}, "ac"),
    ({**NOVEMBER, "widget": "shop", "status": "done"}, "abf"),
    ({**NOVEMBER, "status": "queued", "outcome": "agents-no-answer"}, "d"),
    ({"from": "2026-11-02", "to": "2026-11-03"}, "bc"),
    ({"from": "2026-11-03T13:00:00+01:00", "to": "2026-12-01"}, "df"),  # '+' sent encoded
    ({"widget": "desk"}, "cd"),
    ({"outcome": "erased"}, ""),
])
async def test_the_api_filters(api, query, names):
    client, ids, _ = api
    assert await listed(client, **query) == named(ids, names)


async def test_without_dates_the_other_leads_come_too(api):
    client, ids, panel = api
    assert await listed(client, outcome="connected") == [panel.lead.id, *named(ids, "ac")]
    assert await listed(client, outcome="connected", limit="2") == [panel.lead.id, ids["c"]]


@pytest.mark.parametrize("query, field", [
    ({"outcome": "nope"}, "outcome"),
    ({"status": "closed"}, "status"),
    ({"from": "last week"}, "from"),
    ({"to": "2026-02-30"}, "to"),
    ({"from": "2026-11-03", "to": "2026-11-03"}, "to"),
])
async def test_a_refused_filter_is_a_problem_naming_its_parameter(api, query, field):
    client, _, panel = api
    before = await panel.store.audit_entries()
    response = await client.get("/api/v1/leads", params=query, headers=AUTH)
    assert response.status == 422 and response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"].endswith("invalid-field") and problem["field"] == field, problem
    assert await panel.store.audit_entries() == before  # no token use: nothing was read


def test_the_spec_lists_the_codes_values():
    (operation,) = [op for path, item in load_spec()["paths"].items() if path == "/api/v1/leads"
                    for method, op in item.items() if method == "get"]
    params = {p["name"]: p for p in operation["parameters"] if "name" in p}
    assert params["status"]["schema"]["enum"] == list(LEAD_STATUSES)
    assert params["outcome"]["schema"]["enum"] == list(LEAD_OUTCOMES)
    assert {"widget", "status", "outcome", "from", "to", "limit"} <= set(params)
