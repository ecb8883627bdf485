"""The panel as the engine serves it (make_app's defaults: the real session middleware and
login routes, the real pages): a viewer logs in with a password, sees the leads page with the
number masked, can't open an admin page, and logs out; a form posted without the session's
CSRF token is refused."""

from __future__ import annotations

import re

import argon2
from aiohttp.test_utils import TestClient, TestServer

from callengine.access import Principal, Role
from callengine.services.users import Users
from callengine.web import WebDeps, make_app
from tests.support.panel import ADMIN_TOKEN, holds_number, seeded_panel

ADMIN = Principal("ops", Role.ADMIN)
PASSWORD = "a long viewer password"
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1,
                              type=argon2.Type.ID)


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


async def test_a_viewer_logs_in_sees_masked_leads_and_logs_out(tmp_path):
    async with seeded_panel(tmp_path) as panel:
        services = panel.services
        services.users = Users(services.context, hasher=CHEAP)
        await services.users.add(ADMIN, "vera", "viewer", PASSWORD)
        app = make_app(WebDeps(services, ADMIN_TOKEN, panel_secure_cookies=False))
        async with TestClient(TestServer(app)) as client:
            answer = await client.get("/panel/leads", allow_redirects=False)
            assert answer.status == 303 and answer.headers["Location"] == "/panel/login"
            login = await (await client.get("/panel/login")).text()
            answer = await client.post("/panel/login", data={
                "username": "vera", "password": PASSWORD, "csrf": _csrf(login)},
                allow_redirects=False)
            assert answer.status == 303
            leads = await client.get("/panel/leads")
            body = await leads.read()
            assert leads.status == 200 and panel.lead.id.encode() in body
            assert holds_number(body) == []  # masked for a viewer
            assert "+48 *** *** 567".encode() in body
            assert (await client.get("/panel/audit")).status == 403  # admins only
            page = await (await client.get("/panel/leads")).text()
            refused = await client.post("/panel/logout", data={"csrf": "forged"},
                                        allow_redirects=False)
            assert refused.status == 403
            answer = await client.post("/panel/logout", data={"csrf": _csrf(page)},
                                       allow_redirects=False)
            assert answer.status == 303
            after = await client.get("/panel/leads", allow_redirects=False)
            assert after.status == 303 and after.headers["Location"] == "/panel/login"
        entries = [e.action for e in await services.context.store.audit_entries()]
        assert "panel.login" in entries and "panel.logout" in entries
