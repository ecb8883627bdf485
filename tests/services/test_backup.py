"""Encrypted backups: restore into an empty directory finds every lead and a playable
recording; a backup taken before an erasure cannot bring the erased recording back."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import time
from pathlib import Path

import pytest

from callengine import cli, crypto
from callengine.flow import Strategy
from callengine.audio import DEFAULT_SAMPLE_RATE, bytes_per_second
from callengine.crypto import FieldCipher
from callengine.model import ERASED, LEAD_QUEUED, Agent, Consent, widget_settings_from_input
from callengine.recordings import RecordingUnavailable, RecordingVault
from callengine.services import views
from callengine.services.backup import create_backup, restore_backup
from callengine.services.clauses import text_sha256
from callengine.storage import KeyStore, Store
from tests.support.audio import assert_both_tones, scan_for_plaintext
from tests.support.engine import DATA_KEY, DATA_KEY_B64
from tests.support.intake import journal_lead_and_die
from tests.support.recordings import seed_recording, two_tones

# The backup snapshots the SQLite store (a PostgreSQL store: its own tools, `backup` refuses).
pytestmark = pytest.mark.sqlite_only

ADMIN = "admin-token-0123456789abcdef"
ANNA, BOB = "+48601234567", "+48601999888"


@pytest.fixture
def live(tmp_path, monkeypatch):
    """A live installation: store, recordings, keystore, keys, config."""
    private, public = crypto.generate_recipient_keypair()
    crypto.save_private_key(tmp_path / "rec.key", private)
    crypto.save_public_key(tmp_path / "rec.pub", public)
    (tmp_path / "recordings").mkdir()
    (tmp_path / "c.toml").write_text(
        '[store]\ndatabase = "ce.db"\nrecordings_dir = "recordings"\nkeystore = "ks/ks.db"\n'
        '[recording]\nroute = "rtp"\npublic_key_file = "rec.pub"\n'
        'private_key_files = ["rec.key"]\n')
    for name, value in (("CALLENGINE_ARI_PASSWORD", "x"), ("CALLENGINE_ADMIN_TOKEN", ADMIN),
                        ("CALLENGINE_DATA_KEY", DATA_KEY_B64)):
        monkeypatch.setenv(name, value)

    async def seed() -> dict[str, str]:
        async with Store.open(tmp_path / "ce.db", DATA_KEY,
                              keystore=tmp_path / "ks" / "ks.db") as store, \
                KeyStore.open(tmp_path / "ks" / "ks.db") as keystore:
            vault = RecordingVault(tmp_path / "recordings", keystore)
            await store.add_agent(Agent("alice", "PJSIP/agent1"))
            await store.add_group("sales", Strategy.RING_ALL, 20, ["alice"])
            widget = await store.add_widget("shop", "Shop", widget_settings_from_input(
                {"group": "sales", "allowed_regions": ["PL"]}), time.time())
            await store.put_clause(CLAUSE)
            ids = {}
            for phone, name in ((ANNA, "Anna"), (BOB, "Bob")):
                lead = await store.create_lead(
                    widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name=name,
                    email=None, consent=EVIDENCE, now=time.time())
                attempt = await store.start_attempt(lead.id, time.time())
                ids[phone] = await seed_recording(store, vault, attempt, public, two_tones(2))
            return ids

    recordings = asyncio.run(seed())
    return tmp_path, private, recordings


CLAUSE = {"widget_id": "shop", "language": "pl", "version": "v2", "text": "Zgoda. Żółć.",
          "sha256": text_sha256("Zgoda. Żółć."), "privacy_url": "https://shop.example/p",
          "notice_version": "rec-1", "notice_text": "Nagrywamy.", "created_at": 1.0}


# A lead's consent evidence (docs/consent.md): it travels with the lead.
EVIDENCE = Consent(False, True, "v2", clause_sha256=CLAUSE["sha256"], clause_language="pl",
                   notice_version="rec-1", at=1_700_000_000.0, origin="https://shop.example")


def run(tmp_path, *args) -> int:
    return cli.main(["--config", str(tmp_path / "c.toml"), *args])


async def play(restored, keystore_path, recording_id: str, private: bytes) -> bytes:
    async with Store.open(restored / "callengine.db", DATA_KEY, keystore=keystore_path) as store, \
            KeyStore.open(keystore_path) as keystore:
        recording = await store.get_recording(recording_id)
        plain = await RecordingVault(restored / "recordings", keystore, [private]).open(recording)
        return b"".join(plain.chunks)


def test_backup_and_restore(live, capsys):
    tmp_path, private, recordings = live
    backup = tmp_path / "monday.cebak"
    assert run(tmp_path, "backup", "--out", str(backup)) == 0
    assert "2 lead(s), 2 recording(s)" in capsys.readouterr().out
    assert backup.stat().st_mode & 0o777 == 0o600
    raw = backup.read_bytes()
    assert b"SQLite format 3" not in raw and b"Anna" not in raw  # all of it encrypted
    assert scan_for_plaintext(tmp_path) == []
    restored = tmp_path / "restored"
    assert cli.main(["restore", str(backup), "--into", str(restored),
                     "--key", str(tmp_path / "rec.key")]) == 0
    assert (restored / "data.key").read_text().strip() == DATA_KEY_B64

    async def check() -> None:
        async with Store.open(restored / "callengine.db", DATA_KEY,
                              keystore=tmp_path / "ks" / "ks.db") as store:
            leads = await store.list_leads()
            assert sorted(lead.name for lead in leads) == ["Anna", "Bob"]
            assert {lead.phone_e164 for lead in leads} == {ANNA, BOB}
            assert await store.get_clause("shop", "pl", "v2") == CLAUSE  # the clauses travel
            assert {lead.consent for lead in leads} == {EVIDENCE}  # and the leads' evidence
        pcm = await play(restored, tmp_path / "ks" / "ks.db", recordings[ANNA], private)
        assert_both_tones(pcm, DEFAULT_SAMPLE_RATE)
        assert len(pcm) == 2 * bytes_per_second(DEFAULT_SAMPLE_RATE)

    asyncio.run(check())
    # a second restore into the same directory is refused, nothing touched
    assert cli.main(["restore", str(backup), "--into", str(restored),
                     "--key", str(tmp_path / "rec.key")]) == 1
    assert "not empty" in capsys.readouterr().err


def backup_erase_anna_restore(tmp_path) -> Path:
    """Monday's backup, then Anna's erasure, then Monday's backup restored: where it is."""
    backup = tmp_path / "monday.cebak"
    assert run(tmp_path, "backup", "--out", str(backup)) == 0
    assert run(tmp_path, "subject", "erase", ANNA, "--yes") == 0
    restored = tmp_path / "restored"
    assert cli.main(["restore", str(backup), "--into", str(restored),
                     "--key", str(tmp_path / "rec.key")]) == 0
    return restored


def test_backup_before_erasure_cannot_resurrect_the_recording(live, capsys):
    tmp_path, private, recordings = live
    restored = backup_erase_anna_restore(tmp_path)
    assert (restored / "recordings" / f"{recordings[ANNA]}.cerec").exists()  # the ciphertext …
    with pytest.raises(RecordingUnavailable, match="crypto-shredded"):  # … but its key is gone
        asyncio.run(play(restored, tmp_path / "ks" / "ks.db", recordings[ANNA], private))
    assert_both_tones(asyncio.run(play(restored, tmp_path / "ks" / "ks.db", recordings[BOB],
                                       private)), DEFAULT_SAMPLE_RATE)


def test_restore_refuses_wrong_key_and_tampering(live, capsys):
    tmp_path, _, _ = live
    backup = tmp_path / "b.cebak"
    assert run(tmp_path, "backup", "--out", str(backup)) == 0
    other, _ = crypto.generate_recipient_keypair()
    crypto.save_private_key(tmp_path / "other.key", other)
    assert cli.main(["restore", str(backup), "--into", str(tmp_path / "r1"),
                     "--key", str(tmp_path / "other.key")]) == 1
    assert "WrongKeyError" in capsys.readouterr().err
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x40
    backup.write_bytes(bytes(data))
    assert cli.main(["restore", str(backup), "--into", str(tmp_path / "r2"),
                     "--key", str(tmp_path / "rec.key")]) == 1
    assert "TamperedError" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r1").exists()
    assert not list(tmp_path.glob(".r*.restoring-*"))  # nothing half-restored left behind


def test_a_lead_only_in_the_intake_journal_is_in_the_backup(live):
    """The engine died right after a visitor's lead was committed to the journal, before its
    move into the store: the backup has it all the same."""
    tmp_path, private, recordings = live
    carol = "+48601555444"
    lead_id = journal_lead_and_die(
        tmp_path / "ce.db", "shop", phone_e164=carol, phone_region="PL", phone_kind="mobile",
        name="Carol", email=None, consent=EVIDENCE,
        keystore=tmp_path / "ks" / "ks.db")
    backup = tmp_path / "b.cebak"
    create_backup(backup, database=tmp_path / "ce.db", data_key=DATA_KEY,
                  recordings_dir=tmp_path / "recordings", recording_ids=list(recordings.values()),
                  recipient_public_key=crypto.load_public_key(tmp_path / "rec.pub"), leads=3)
    restored = tmp_path / "restored"
    restore_backup(backup, [private], restored)

    async def check() -> None:
        # The engine's next start moves the journaled lead, and its new subject's key into the
        # live keystore (a backup never holds a key), with which the restored store reads it.
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks" / "ks.db"):
            pass
        async with Store.open(restored / "callengine.db", DATA_KEY,
                              keystore=tmp_path / "ks" / "ks.db") as store:
            lead = await store.get_lead(lead_id)
            assert (lead.phone_e164, lead.name, lead.status) == (carol, "Carol", LEAD_QUEUED)
            assert lead.consent == EVIDENCE  # the journal's evidence columns
            assert len(await store.list_leads()) == 3

    asyncio.run(check())


def test_a_backup_taken_before_an_erasure_cannot_bring_the_person_back(live, capsys):
    """Backup → erase a subject → restore the old backup into an empty directory (with the
    live keystore): the erased person's leads are unreadable and shown as erased, nothing in
    the restored files leads back to the number (not even with the data key the backup
    holds); every other subject and recording is intact."""
    tmp_path, private, recordings = live
    restored = backup_erase_anna_restore(tmp_path)
    data_key = base64.b64decode((restored / "data.key").read_text())
    raw = b"".join(p.read_bytes() for p in restored.iterdir() if p.is_file())
    anna_hash = FieldCipher(data_key).number_hash(ANNA).encode()
    assert anna_hash not in raw and FieldCipher(data_key).number_hash(BOB).encode() not in raw
    live_keystore = tmp_path / "ks" / "ks.db"

    async def check() -> None:
        async with Store.open(restored / "callengine.db", data_key,
                              keystore=live_keystore) as store:
            leads = {lead.name: lead for lead in await store.list_leads()}
            assert sorted(leads) == ["Bob", ERASED]
            anna = leads[ERASED]
            assert (anna.phone_e164, anna.phone_masked, anna.email) == (ERASED, ERASED, None)
            assert leads["Bob"].phone_e164 == BOB
            assert views.subject_lead_view(anna, [], [])["phone"] == ERASED
            assert await store.leads_for_number(ANNA) == []  # no way from the number to it
            assert len(await store.leads_for_number(BOB)) == 1
            # the data key of the backup opens nothing of hers (not the old field cipher either)
            db = sqlite3.connect(restored / "callengine.db")
            (blob,) = db.execute("SELECT phone_enc FROM leads WHERE id = ?", (anna.id,)).fetchone()
            db.close()
            with pytest.raises(crypto.TamperedError):
                FieldCipher(data_key).decrypt(bytes(blob), f"leads.phone:{anna.id}")
        with pytest.raises(RecordingUnavailable, match="crypto-shredded"):
            await play(restored, live_keystore, recordings[ANNA], private)
        assert_both_tones(await play(restored, live_keystore, recordings[BOB], private),
                          DEFAULT_SAMPLE_RATE)

    asyncio.run(check())
