"""Consent evidence over HTTP: what a lead keeps of the clause it was shown (the sha256 of the
exact text, its language, the recording notice's version, the time, the page's origin), the
call report's columns (JSON and CSV), the subject export's exact text, and a purge's
tombstone keeping the hash."""

from __future__ import annotations

import csv
import hashlib
import io
import json

from callengine.model import widget_settings_from_input
from tests.web import test_web
from tests.web.test_clauses import PL_TEXT, clause_body
from tests.web.test_web import ADMIN_HEADERS, lead_body

env = test_web.env  # the fixture

SHOP = "https://shop.example"
REPORT = "/api/v1/reports/calls?widget={}&from=2023-11-01&to=2023-12-01"


async def _recording_widget(store, clock):
    return await store.add_widget("rec", "Rec", widget_settings_from_input(
        {"group": "sales", "allowed_regions": ["PL"], "duplicate_window_s": 0,
         "recording": "on", "recording_notice": "sound:notice", "allowed_origins": [SHOP], "challenge": "off"}),
        clock.now)


async def test_a_registered_clause_is_kept_as_its_exact_hash_with_the_origin(env):
    client, store, _, clock, _ = env
    widget = await _recording_widget(store, clock)
    made = await client.post("/api/v1/widgets/rec/clauses", json=clause_body(),
                             headers=ADMIN_HEADERS)
    assert made.status == 201
    intake = f"/api/v1/widgets/{widget.public_key}/leads"
    from_page = await client.post(intake, json=lead_body(language="pl"),
                                  headers={"Origin": SHOP})
    assert from_page.status == 201
    lead = await store.get_lead((await from_page.json())["id"])
    consent = lead.consent
    assert consent.clause_sha256 == hashlib.sha256(PL_TEXT.encode("utf-8")).hexdigest()
    assert (consent.clause_language, consent.notice_version) == ("pl", "rec-1")
    assert (consent.at, consent.origin) == (clock.now, SHOP)
    # not a browser (a CRM, curl: no Origin): no origin kept
    clock.now += 1
    direct = await client.post(intake, json=lead_body(language="pl-PL", phone="+48 601 234 568"))
    other = await store.get_lead((await direct.json())["id"])
    assert other.consent.origin is None and other.consent.clause_language == "pl"
    shown = await client.get(f"/api/v1/leads/{lead.id}", headers=ADMIN_HEADERS)
    assert (await shown.json())["consent"] == {
        "marketing": False, "recording": True, "clause_version": "2026-11",
        "clause_sha256": consent.clause_sha256, "clause_language": "pl",
        "notice_version": "rec-1", "at": clock.now - 1, "origin": SHOP}

    # the report: JSON and CSV carry the evidence
    report = await (await client.get(REPORT.format("rec"), headers=ADMIN_HEADERS)).json()
    row = next(r for r in report["rows"] if r["lead"] == lead.id)
    assert (row["information_clause_version"], row["clause_language"], row["clause_sha256"],
            row["notice_version"], row["notice_played"]) == (
        "2026-11", "pl", consent.clause_sha256, "rec-1", None)  # not called yet
    text = await (await client.get(REPORT.format("rec") + "&format=csv",
                                   headers=ADMIN_HEADERS)).text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {"clause_language", "clause_sha256", "notice_version", "notice_played"} <= set(rows[0])
    assert rows[0]["clause_sha256"] == consent.clause_sha256

    # the subject export: the exact text seen, verified against the stored hash
    exported = await client.post("/api/v1/subjects/export", json={"phone": lead.phone_e164},
                                 headers=ADMIN_HEADERS)
    first = (await exported.json())["leads"][0]["consent"]
    assert first["information_clause"]["text"] == PL_TEXT
    assert first["information_clause"]["sha256"] == consent.clause_sha256
    assert first["information_clause"]["verified"] is True
    assert (first["given_at"], first["origin"], first["recording_notice_version"]) == (
        clock.now - 1, SHOP, "rec-1")
    # and the exact recording notice shown beside it (from the same record); the lead keeps
    # only its version, so there is no hash to verify it against: verified is null
    notice = clause_body()["recording_notice"]["text"]
    assert first["recording_notice"] == {
        "version": "rec-1", "text": notice, "verified": None,
        "sha256": hashlib.sha256(notice.encode("utf-8")).hexdigest()}
    # a record whose notice is not the version the lead stored: no text, not verified
    await store._db.execute("UPDATE clauses SET notice_version = 'rec-2'")
    altered = await client.post("/api/v1/subjects/export", json={"phone": lead.phone_e164},
                                headers=ADMIN_HEADERS)
    altered_consent = (await altered.json())["leads"][0]["consent"]
    assert altered_consent["recording_notice"] == {
        "version": "rec-1", "text": None, "sha256": None, "verified": False}
    assert altered_consent["information_clause"]["verified"] is True  # its text is intact

    # purged: the tombstone keeps the hash, the language and the notice version
    assert await store.purge_leads([lead.id], clock.now, "retention") == 1
    report = await (await client.get(REPORT.format("rec"), headers=ADMIN_HEADERS)).json()
    row = next(r for r in report["rows"] if r["lead"] == lead.id)
    assert row["purged"] == "retention" and row["phone"] is None
    assert (row["clause_sha256"], row["clause_language"], row["notice_version"]) == (
        consent.clause_sha256, "pl", "rec-1")


async def test_an_unregistered_clause_has_no_hash_and_the_report_says_so(env):
    client, store, widget, clock, _ = env  # "shop": no clause records, records no calls
    response = await client.post(f"/api/v1/widgets/{widget.public_key}/leads",
                                 json=lead_body(clause_version="crm-7"),
                                 headers={"Origin": SHOP})
    lead = await store.get_lead((await response.json())["id"])
    assert (lead.consent.clause_sha256, lead.consent.clause_language,
            lead.consent.notice_version) == (None, None, None)
    assert lead.consent.origin == SHOP and lead.consent.at == clock.now
    report = await (await client.get(REPORT.format("shop"), headers=ADMIN_HEADERS)).json()
    assert report["rows"][0]["clause_sha256"] == "unregistered"
    exported = await client.post("/api/v1/subjects/export", json={"phone": lead.phone_e164},
                                 headers=ADMIN_HEADERS)
    consent = (await exported.json())["leads"][0]["consent"]
    assert consent["information_clause"] is None
    assert consent["recording_notice"] is None  # the widget does not record


def _conforms(schema, method: str, path: str, status: int, body: bytes, content_type: str):
    """The answer against docs/openapi.yaml's schema for its operation and status (raises)."""
    import requests
    from schemathesis.core.transport import Response

    operation = schema[path][method]
    request = requests.Request(method, "http://engine" + path).prepare()
    operation.validate_response(Response(
        status_code=status, headers={"content-type": [content_type]}, content=body,
        request=request, elapsed=0.0, verify=True))


async def test_rich_answers_conform_to_the_spec(env):
    """The fuzz test's cases rarely reach rich states; here a recorded, called lead with its
    clause and notice: its detail, the list, the report, the export, the widget's config and
    hours, each validated against docs/openapi.yaml (closed schemas: an undeclared field
    fails), and a deliberately wrong body is caught."""
    import pytest
    import schemathesis

    from callengine.flow import Outcome, Result
    from tests.web.test_openapi import load_spec

    schema = schemathesis.openapi.from_dict(load_spec())
    client, store, _, clock, _ = env
    widget = await _recording_widget(store, clock)
    assert (await client.post("/api/v1/widgets/rec/clauses", json=clause_body(),
                              headers=ADMIN_HEADERS)).status == 201
    made = await client.post(f"/api/v1/widgets/{widget.public_key}/leads",
                             json=lead_body(language="pl"), headers={"Origin": SHOP})
    lead_id = (await made.json())["id"]
    attempt = await store.start_attempt(lead_id, clock.now)
    await store.mark_notice_played(attempt.id)
    await store.finish_attempt(attempt, Result(Outcome.CONNECTED, connected=True), clock.now,
                               retry_at=None)
    phone = (await store.get_lead(lead_id)).phone_e164
    key = widget.public_key
    asks = [
        ("POST", "/api/v1/widgets/{key}/leads", made),
        ("GET", "/api/v1/leads/{lead_id}",
         await client.get(f"/api/v1/leads/{lead_id}", headers=ADMIN_HEADERS)),
        ("GET", "/api/v1/leads", await client.get("/api/v1/leads", headers=ADMIN_HEADERS)),
        ("GET", "/api/v1/reports/calls",
         await client.get(REPORT.format("rec"), headers=ADMIN_HEADERS)),
        ("POST", "/api/v1/subjects/export",
         await client.post("/api/v1/subjects/export", json={"phone": phone},
                           headers=ADMIN_HEADERS)),
        ("GET", "/api/v1/widgets/{key}/config",
         await client.get(f"/api/v1/widgets/{key}/config?lang=pl")),
        ("GET", "/api/v1/widgets/{key}/hours", await client.get(f"/api/v1/widgets/{key}/hours")),
        ("GET", "/api/v1/widgets/{key}/leads/{lead_id}",
         await client.get(f"/api/v1/widgets/{key}/leads/{lead_id}")),
        ("GET", "/api/v1/widgets", await client.get("/api/v1/widgets", headers=ADMIN_HEADERS)),
    ]
    for method, path, response in asks:
        assert response.status < 300, (path, await response.text())
        body = await response.read()
        _conforms(schema, method, path, response.status, body, response.content_type)
    exported = json.loads(await asks[4][2].read())["leads"][0]
    assert exported["consent"]["recording_notice"]["text"] == "Rozmowa jest nagrywana."
    assert exported["attempts"][0]["notice_played"] is True
    report = json.loads(await asks[3][2].read())["rows"][0]
    assert report["notice_played"] is True
    wrong = json.loads(await asks[4][2].read())
    wrong["leads"][0]["consent"]["undeclared"] = 1
    with pytest.raises(Exception, match="violates schema"):
        _conforms(schema, "POST", "/api/v1/subjects/export", 200, json.dumps(wrong).encode(),
                  "application/json")
