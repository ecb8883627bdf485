"""Roles, masking and the tamper-evident audit log, through the API."""

from __future__ import annotations

import sqlite3
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine.storage import Store
from tests.support.engine import DATA_KEY
from tests.support.shop import ADMIN, shop_with_lead
from callengine.services import Services
from callengine.web import WebDeps, make_app


@pytest.fixture
async def env(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        lead = await shop_with_lead(store)
        app = make_app(WebDeps(Services(store), ADMIN))
        async with TestClient(TestServer(app)) as client:
            yield client, store, lead, tmp_path


async def token_for(client, role: str, name: str | None = None) -> dict[str, str]:
    response = await client.post("/api/v1/tokens", json={"name": name or role, "role": role},
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status == 201
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def test_masked_unless_a_permitted_role_asks(env):
    client, store, lead, _ = env
    viewer = await token_for(client, "viewer")
    supervisor = await token_for(client, "supervisor")
    url = f"/api/v1/leads/{lead.id}"
    assert (await (await client.get(url, headers=viewer)).json())["phone"] == "+48 *** *** 567"
    refused = await client.get(url + "?unmask=true", headers=viewer)
    assert refused.status == 403 and (await refused.json())["type"].endswith("forbidden")
    assert all(e.action != "numbers.unmask" for e in await store.audit_entries())
    shown = await client.get(url + "?unmask=true", headers=supervisor)
    assert (await shown.json())["phone"] == "+48601234567"
    unmasks = [e for e in await store.audit_entries() if e.action == "numbers.unmask"]
    assert len(unmasks) == 1 and unmasks[0].actor == "supervisor"
    assert unmasks[0].target == f"lead:{lead.id}"
    assert "601234567" not in repr(await store.audit_entries())  # no number in the log itself


async def test_roles_limit_configuration_and_tokens_can_be_revoked(env):
    client, store, _, _ = env
    viewer = await token_for(client, "viewer", "v1")
    response = await client.post("/api/v1/agents", json={"name": "x", "endpoint": "PJSIP/x"},
                                 headers=viewer)
    assert response.status == 403
    await store.revoke_token("v1", time.time())
    assert (await client.get("/api/v1/leads", headers=viewer)).status == 401


@pytest.mark.sqlite_only  # reads the SQLite files
async def test_audit_chain_detects_tampering(env):
    client, store, lead, tmp_path = env
    supervisor = await token_for(client, "supervisor")
    for _ in range(3):
        await client.get(f"/api/v1/leads/{lead.id}?unmask=1", headers=supervisor)
    audit = Services(store).audit
    check = await audit.verify()
    assert len(check.entries) == 4 and check.intact
    # The store refuses edits outright …
    db = sqlite3.connect(tmp_path / "ce.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_log WHERE seq = 2")
    # … and someone who drops the guard still can't hide an edit.
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 2")
    db.commit()
    assert "entry 2: edited" in (await audit.verify()).problem
    db.execute("UPDATE audit_log SET actor = 'supervisor' WHERE seq = 2")
    db.execute("DROP TRIGGER audit_log_no_delete")
    db.execute("DELETE FROM audit_log WHERE seq = 3")
    db.commit()
    assert "entry 3: deleted" in (await audit.verify()).problem
    listing = await client.get("/api/v1/audit", headers={"Authorization": f"Bearer {ADMIN}"})
    assert (await listing.json())["intact"] is False
