"""Call reports: per widget and period, outcomes, durations, consents and clause version,
masked unless asked (audited); purged leads still counted from their tombstones."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine import cli
from callengine.flow import Outcome, Result, Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.services.reports import parse_day
from callengine.retention import Purger
from callengine.recordings import RecordingVault
from callengine.storage import KeyStore, Store
from callengine.services import Services
from callengine.web import WebDeps, make_app
from tests.support.engine import DATA_KEY, DATA_KEY_B64

ADMIN = "admin-token-0123456789abcdef"
NOV = parse_day("2026-11-01")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    for name, value in (("CALLENGINE_ARI_PASSWORD", "x"), ("CALLENGINE_ADMIN_TOKEN", ADMIN),
                        ("CALLENGINE_DATA_KEY", DATA_KEY_B64)):
        monkeypatch.setenv(name, value)
    (tmp_path / "c.toml").write_text('[store]\ndatabase = "ce.db"\nkeystore = "ks.db"\n')

    async def seed() -> None:
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
            await store.add_agent(Agent("alice", "PJSIP/agent1"))
            await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
            widget = await store.add_widget("shop", "Shop", widget_settings_from_input(
                {"group": "sales", "allowed_regions": ["PL"], "lead_retention_days": 30,
                 "max_leads_per_number_per_day": 50}), NOV)
            cases = [  # (day in November, number, consent, outcome)
                (2, "+48601000001", Consent(True, False, "v1"), Result(
                    Outcome.CONNECTED, agent="PJSIP/agent1", agent_ring_s=2.0,
                    visitor_ring_s=3.0, talk_s=61.5, q850=16, connected=True)),
                (10, "+48601000002", Consent(False, True, "v2"),
                 Result(Outcome.VISITOR_BUSY, q850=17)),
                (31, "+48601000003", Consent(False, False, "v2"), None),  # December: not in
            ]
            for day, phone, consent, result in cases:
                at = NOV + (day - 1) * 86400
                lead = await store.create_lead(widget, phone_e164=phone, phone_region="PL",
                                               phone_kind="mobile", name=None, email=None,
                                               consent=consent, now=at)
                attempt = await store.start_attempt(lead.id, at)
                if result:
                    await store.finish_attempt(attempt, result, at + 90, retry_at=None)
            async with KeyStore.open(tmp_path / "ks.db") as keystore:
                vault = RecordingVault(tmp_path, keystore)
                await Purger(store, vault).run(NOV + 38.5 * 86400)  # purges the Nov 2 lead

    asyncio.run(seed())
    return tmp_path


def test_cli_report_csv_masked_with_tombstones(setup, capsys):
    tmp_path = setup
    args = ["--config", str(tmp_path / "c.toml"), "report", "shop", "--from", "2026-11-01",
            "--to", "2026-12-01"]
    assert cli.main(args) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["outcome"] for r in rows] == ["visitor-busy", "connected"]
    busy, purged = rows
    assert busy["phone"] == "+48 *** *** 002" and busy["consent_recording"] == "True"
    assert busy["information_clause_version"] == "v2" and busy["q850"] == "17"
    assert purged["purged"] == "retention" and purged["phone"] == ""
    assert purged["consent_marketing"] == "True" and purged["information_clause_version"] == "v1"
    assert cli.main([*args, "--unmask", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["phone"] == "+48601000002"
    assert cli.main(["--role", "viewer", *args, "--unmask"]) == 3
    base = args[:3]  # --config FILE report
    assert cli.main([*base, "nope", "--from", "2026-11-01", "--to", "2026-12-01"]) == 1
    assert cli.main([*base, "shop", "--from", "yesterday", "--to", "2026-12-01"]) == 2


async def test_api_report(setup):
    tmp_path = setup
    async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
        app = make_app(WebDeps(Services(store), ADMIN))
        async with TestClient(TestServer(app)) as client:
            url = "/api/v1/reports/calls?widget=shop&from=2026-11-01&to=2026-12-01"
            response = await client.get(url, headers={"Authorization": f"Bearer {ADMIN}"})
            rows = (await response.json())["rows"]
            assert len(rows) == 2 and "601000002" not in json.dumps(rows)
            csv_response = await client.get(url + "&format=csv",
                                            headers={"Authorization": f"Bearer {ADMIN}"})
            assert csv_response.content_type == "text/csv"
            assert (await csv_response.text()).startswith("lead,created_at,status,outcome")
