"""Data-subject rights: export everything held about a number; erase it without a trace."""

from __future__ import annotations

import asyncio
import json
import time
import wave

import pytest
from aiohttp.test_utils import TestClient, TestServer

from callengine import cli, crypto
from callengine.crypto import FieldCipher
from callengine.flow import Strategy
from callengine.model import Agent, Consent, widget_settings_from_input
from callengine.recordings import RecordingVault
from callengine.storage import KeyStore, Store
from callengine.services import Services
from callengine.web import WebDeps, make_app
from tests.support.audio import assert_both_tones
from tests.support.engine import DATA_KEY, DATA_KEY_B64
from tests.support.recordings import seed_recording, two_tones

ADMIN = "admin-token-0123456789abcdef"
ANNA, BOB = "+48601234567", "+48601999888"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    private, public = crypto.generate_recipient_keypair()
    crypto.save_private_key(tmp_path / "rec.key", private)
    (tmp_path / "recordings").mkdir()
    (tmp_path / "c.toml").write_text(
        '[store]\ndatabase = "ce.db"\nrecordings_dir = "recordings"\nkeystore = "ks.db"\n'
        '[recording]\nroute = "rtp"\nprivate_key_files = ["rec.key"]\n')
    for name, value in (("CALLENGINE_ARI_PASSWORD", "x"), ("CALLENGINE_ADMIN_TOKEN", ADMIN),
                        ("CALLENGINE_DATA_KEY", DATA_KEY_B64), ("CALLENGINE_ACTOR", "dpo")):
        monkeypatch.setenv(name, value)

    async def seed() -> None:
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store, \
                KeyStore.open(tmp_path / "ks.db") as keystore:
            vault = RecordingVault(tmp_path / "recordings", keystore)
            await store.add_agent(Agent("alice", "PJSIP/agent1"))
            await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
            widget = await store.add_widget("shop", "Shop", widget_settings_from_input(
                {"group": "sales", "allowed_regions": ["PL"], "duplicate_window_s": 0}),
                time.time())
            for phone, name, clause in ((ANNA, "Anna Nowak", "v3"), (ANNA, "Anna N.", "v4"),
                                        (BOB, "Bob", "v4")):
                lead = await store.create_lead(
                    widget, phone_e164=phone, phone_region="PL", phone_kind="mobile",
                    name=name, email=f"{name.split()[0].lower()}@example.com",
                    consent=Consent(True, True, clause), now=time.time())
                attempt = await store.start_attempt(lead.id, time.time())
                await seed_recording(store, vault, attempt, public, two_tones(1))

    asyncio.run(seed())
    return tmp_path


def run(tmp_path, *args) -> int:
    return cli.main(["--config", str(tmp_path / "c.toml"), *args])


def test_export_holds_everything_about_the_number(setup, capsys):
    tmp_path = setup
    assert run(tmp_path, "subject", "export", "0048 601 234 567",
               "--out", str(tmp_path / "anna.json"), "--audio", str(tmp_path / "audio")) == 0
    data = json.loads((tmp_path / "anna.json").read_text())
    assert data["subject"] == ANNA
    assert [lead["name"] for lead in data["leads"]] == ["Anna Nowak", "Anna N."]
    assert [lead["consent"]["information_clause_version"] for lead in data["leads"]] == [
        "v3", "v4"]
    assert all(lead["attempts"] and len(lead["recordings"]) == 1 for lead in data["leads"])
    files = sorted((tmp_path / "audio").iterdir())
    assert len(files) == 2
    with wave.open(str(files[0])) as w:
        assert w.getframerate() == data["leads"][0]["recordings"][0]["sample_rate"] == 8000
        assert_both_tones(w.readframes(w.getnframes()), w.getframerate())
    assert "Bob" not in json.dumps(data)
    assert run(tmp_path, "--role", "supervisor", "subject", "export", ANNA) == 3


def test_erase_leaves_no_trace(setup, capsys):
    tmp_path = setup
    assert run(tmp_path, "subject", "erase", ANNA) == 2  # asks for --yes first
    assert run(tmp_path, "subject", "erase", ANNA, "--yes") == 0
    assert "erased 2 lead(s) and crypto-shredded 2 recording(s)" in capsys.readouterr().out
    assert len(list((tmp_path / "recordings").iterdir())) == 1  # Bob's
    assert run(tmp_path, "subject", "export", ANNA) == 0
    assert json.loads(capsys.readouterr().out)["leads"] == []
    assert run(tmp_path, "subject", "export", BOB) == 0
    assert len(json.loads(capsys.readouterr().out)["leads"]) == 1
    # No trace: not the number, not its keyed hash, not the name, anywhere in the store's files.
    # (The keyed hashes live in the keystore now, not in the store: see docs/backup.md.)
    raw = b"".join(p.read_bytes() for p in [*tmp_path.glob("ce.db*"), *tmp_path.glob("ks.db*")])
    anna_hash = FieldCipher(DATA_KEY).number_hash(ANNA).encode()
    for trace in (anna_hash, b"601234567", b"Anna"):
        assert trace not in raw
    assert FieldCipher(DATA_KEY).number_hash(BOB).encode() in raw  # the check can see hashes
    assert run(tmp_path, "audit", "verify") == 0
    assert "intact" in capsys.readouterr().out
    assert run(tmp_path, "audit", "list") == 0
    actions = [e["action"] for e in json.loads(capsys.readouterr().out)]
    assert actions == ["subjects.erase", "subjects.export", "subjects.export"]


async def test_api_export_and_erase(setup):
    tmp_path = setup
    admin = {"Authorization": f"Bearer {ADMIN}"}
    async with Store.open(tmp_path / "ce.db", DATA_KEY,
                          keystore=tmp_path / "ks.db") as store, \
            KeyStore.open(tmp_path / "ks.db") as keystore:
        app = make_app(WebDeps(Services(store, vault=RecordingVault(tmp_path / "recordings", keystore)),
                               ADMIN))
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/api/v1/subjects/export", json={"phone": ANNA},
                                         headers=admin)
            assert response.status == 200
            assert len((await response.json())["leads"]) == 2
            bad = await client.post("/api/v1/subjects/export", json={"phone": "12"},
                                    headers=admin)
            assert bad.status == 422
            response = await client.post("/api/v1/subjects/erase", json={"phone": ANNA},
                                         headers=admin)
            assert await response.json() == {"leads": 2, "recordings": 2}
            assert await store.leads_for_number(ANNA) == []
