"""Information clauses over HTTP: the admin's versions and the widget's public clause."""

from __future__ import annotations

import hashlib

from tests.web import test_web
from tests.web.test_web import ADMIN_HEADERS, lead_body

env = test_web.env  # the fixture

PL_TEXT = "Administratorem Twoich danych jest Sklep sp. z o.o.; zgoda jest dobrowolna. Żółć."


def clause_body(**overrides):
    body = {"language": "pl", "version": "2026-11", "text": PL_TEXT,
            "privacy_url": "https://shop.example/privacy",
            "recording_notice": {"version": "rec-1", "text": "Rozmowa jest nagrywana."}}
    body.update(overrides)
    return body


async def test_public_clause_is_the_current_version_with_the_exact_hash(env):
    client, store, widget, clock, _ = env
    missing = await client.get(f"/api/v1/widgets/{widget.public_key}/clause?lang=pl")
    assert missing.status == 404
    assert (await missing.json())["type"].endswith("/clause-missing")
    made = await client.post("/api/v1/widgets/shop/clauses", json=clause_body(),
                             headers=ADMIN_HEADERS)
    assert made.status == 201, await made.text()
    got = await client.get(f"/api/v1/widgets/{widget.public_key}/clause?lang=pl-PL",
                           headers={"Origin": "https://shop.example"})
    assert got.status == 200
    assert got.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    data = await got.json()
    assert data == {"version": "2026-11", "language": "pl", "text": PL_TEXT,
                    "sha256": hashlib.sha256(PL_TEXT.encode("utf-8")).hexdigest(),
                    "privacy_url": "https://shop.example/privacy",
                    "recording_notice": {"version": "rec-1", "text": "Rozmowa jest nagrywana."}}
    # English falls back to nothing (no "en" record): clause-missing
    assert (await client.get(f"/api/v1/widgets/{widget.public_key}/clause?lang=en")).status == 404
    clock.now += 1
    await client.post("/api/v1/widgets/shop/clauses", headers=ADMIN_HEADERS,
                      json=clause_body(version="2026-12", text=PL_TEXT + " "))
    newer = await (await client.get(f"/api/v1/widgets/{widget.public_key}/clause?lang=pl")).json()
    assert newer["version"] == "2026-12" and newer["sha256"] != data["sha256"]
    listed = await client.get("/api/v1/widgets/shop/clauses", headers=ADMIN_HEADERS)
    assert [c["version"] for c in (await listed.json())["clauses"]] == ["2026-11", "2026-12"]
    one = await client.get("/api/v1/widgets/shop/clauses/2026-11", headers=ADMIN_HEADERS)
    assert (await one.json())["clauses"][0]["text"] == PL_TEXT


async def test_referenced_version_is_immutable_unreferenced_may_be_replaced(env):
    client, store, widget, clock, _ = env
    url = "/api/v1/widgets/shop/clauses"
    assert (await client.post(url, json=clause_body(), headers=ADMIN_HEADERS)).status == 201
    again = await client.post(url, json=clause_body(text="other"), headers=ADMIN_HEADERS)
    assert again.status == 409
    replaced = await client.post(url, json=clause_body(text="other", replace=True),
                                 headers=ADMIN_HEADERS)
    assert replaced.status == 201
    lead = await client.post(f"/api/v1/widgets/{widget.public_key}/leads",
                             json=lead_body(clause_version="2026-11", language="pl"))
    assert lead.status == 201
    refused = await client.post(url, json=clause_body(text="third", replace=True),
                                headers=ADMIN_HEADERS)
    assert refused.status == 409
    assert (await store.get_clause("shop", "pl", "2026-11"))["text"] == "other"
    assert (await client.post(url, json=clause_body(version="2026-12", text="third"),
                              headers=ADMIN_HEADERS)).status == 201


async def test_clause_writes_need_admin_and_valid_fields(env):
    client, *_ = env
    url = "/api/v1/widgets/shop/clauses"
    assert (await client.post(url, json=clause_body())).status == 401
    bad = await client.post(url, json=clause_body(version="v1\n"), headers=ADMIN_HEADERS)
    assert bad.status == 422
    assert (await client.post("/api/v1/widgets/nope/clauses", json=clause_body(),
                              headers=ADMIN_HEADERS)).status == 404


async def test_intake_refuses_an_unknown_clause_version_and_writes_nothing(env):
    client, store, widget, clock, _ = env
    intake = f"/api/v1/widgets/{widget.public_key}/leads"
    # no clause records: the integration's own version is accepted (unregistered clause)
    assert (await client.post(intake, json=lead_body(clause_version="crm-7"))).status == 201
    await client.post("/api/v1/widgets/shop/clauses", json=clause_body(), headers=ADMIN_HEADERS)
    before = len(await store.list_leads(limit=100))
    refused = await client.post(intake, json=lead_body(clause_version="2026-10", language="pl"))
    assert refused.status == 422
    assert (await refused.json())["type"].endswith("/clause-unknown")
    assert len(await store.list_leads(limit=100)) == before
    ok = await client.post(intake, json=lead_body(clause_version="2026-11", language="pl"))
    assert ok.status == 201
