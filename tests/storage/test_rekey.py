"""A store made before per-subject keys, opened by today's code (storage/rekey.py).

The old store is built here as that schema and that code made it: the migrations before the
per-subject one applied with sqlite3, leads inserted the old way (every personal field under
the store's data key, `phone_hash` the number's keyed hash), a lead waiting in the intake
journal of the old format, an unkeyed audit entry, a recording row with its key in a keystore
left in WAL mode. Then `Store.open` it, as an upgraded engine would, and check what an outsider
would: every lead reads back, one subject per number, no `phone_hash` anywhere in the schema,
no byte of the old ciphertext or of the old keyed hash left in any file of the store's
directory, and the subject can be exported and erased."""

from __future__ import annotations

import pytest

import hashlib
import hmac
import json
import os
import sqlite3
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from callengine.access import GENESIS, Principal, Role, chain_hash
from callengine.model import ERASED, Consent
from callengine.recordings import RecordingVault
from callengine.services import Services
from callengine.storage import KeyStore, Store
from callengine.storage.schema import MIGRATIONS, split_statements
from tests.support.engine import DATA_KEY

# The SQLite backend's own machinery (its journal, files and transactions).
pytestmark = pytest.mark.sqlite_only

ANNA, BOB = "+48601234567", "+48601999888"
DPO = Principal("dpo", Role.ADMIN)
T0 = time.time() - 3 * 86400


def _migration(marker: str) -> int:
    """The index of the migration whose script holds marker (not its number: migrations
    may be renumbered at merges)."""
    return next(i for i, script in enumerate(MIGRATIONS) if marker in script)


PER_SUBJECT = _migration("ADD COLUMN subject_id")  # the first one the old code did not know
AUDIT_META = _migration("CREATE TABLE audit_meta")


# ---- a frozen copy of the old format (crypto/fields.py and storage/intake.py before the
# per-subject keys, commit 3b97c57): never change it to follow today's code ----------------

class OldFieldCipher:
    """The old FieldCipher: fields under one AES-256-GCM key derived from the data key, numbers
    hashed with HMAC-SHA256 under another."""

    def __init__(self, data_key: bytes):
        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(data_key)

        self._aead = AESGCM(derive(b"callengine-fields-v1/aes-256-gcm"))
        self._mac_key = derive(b"callengine-fields-v1/hmac-sha256")

    def encrypt(self, value: str | None, context: str) -> bytes | None:
        if value is None:
            return None
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, value.encode(), context.encode())

    def number_hash(self, e164: str) -> str:
        return hmac.new(self._mac_key, e164.encode(), hashlib.sha256).hexdigest()


OLD_JOURNAL_COLUMNS = ("id", "widget_id", "phone_hash", "phone_enc", "phone_region",
                       "phone_kind", "name_enc", "email_enc", "consent_marketing",
                       "consent_recording", "clause_version", "created_at")

# ---- end of the frozen copy ------------------------------------------------------------------


def old_lead(cipher: OldFieldCipher, lead_id: str, phone: str, name: str | None,
             email: str | None, created: float) -> dict:
    return {
        "id": lead_id, "widget_id": "shop", "phone_hash": cipher.number_hash(phone),
        "phone_enc": cipher.encrypt(phone, f"leads.phone:{lead_id}"), "phone_region": "PL",
        "phone_kind": "mobile", "name_enc": cipher.encrypt(name, f"leads.name:{lead_id}"),
        "email_enc": cipher.encrypt(email, f"leads.email:{lead_id}"),
        "consent_marketing": 1, "consent_recording": 1, "clause_version": "v3",
        "created_at": created,
    }


def insert(db: sqlite3.Connection, table: str, row: dict) -> None:
    db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
               tuple(row.values()))


LEADS = {  # id → (number, name, e-mail, where the old engine left it)
    "01900000-0000-7000-8000-00000000a001": (ANNA, "Anna Nowak", "anna@example.com", "store"),
    "01900000-0000-7000-8000-00000000a002": (ANNA, "Anna N.", None, "store"),
    "01900000-0000-7000-8000-00000000b001": (BOB, "Bob", "bob@example.com", "store"),
    "01900000-0000-7000-8000-00000000a003": (ANNA, None, "a.nowak@example.com", "journal"),
}
ANNA_FIRST, RECORDING, ATTEMPT = next(iter(LEADS)), "rec-old-1", "att-old-1"


def build_old_store(store_dir: Path, keystore: Path) -> tuple[list[bytes], list[bytes]]:
    """The old store (and its old journal and keystore); returns the traces of personal data
    it holds that must not outlive the migration in the store's files: (the keyed hashes,
    the ciphertexts)."""
    cipher = OldFieldCipher(DATA_KEY)
    store_dir.mkdir()
    database = store_dir / "ce.db"
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for number, script in enumerate(MIGRATIONS[:PER_SUBJECT], start=1):
        if number - 1 == AUDIT_META:
            # an entry of the old unkeyed chain, made before the keyed one came
            entry = (1, T0, "admin", "admin", "widgets.add", "widget:shop", "")
            db.execute("INSERT INTO audit_log (seq, at, actor, role, action, target, detail,"
                       " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (*entry, GENESIS, chain_hash(GENESIS, *entry)))
        db.execute("BEGIN")
        for statement in split_statements(script):
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {number}")
        db.execute("COMMIT")
        if number == 1:
            db.execute("INSERT INTO agents (name, endpoint) VALUES ('alice', 'PJSIP/agent1')")
            db.execute("INSERT INTO agent_groups VALUES ('sales', 'ring-all', 20)")
            db.execute("INSERT INTO group_members VALUES ('sales', 'alice', 0)")
            db.execute("INSERT INTO widgets VALUES ('shop', 'Shop', 'pk-shop', ?, ?)", (
                json.dumps({"group": "sales", "allowed_regions": ["PL"]}), T0))
    hashes, blobs, journaled = [], [], []
    for i, (lead_id, (phone, name, email, where)) in enumerate(LEADS.items()):
        row = old_lead(cipher, lead_id, phone, name, email, T0 + 60 * i)
        hashes.append(row["phone_hash"].encode())
        blobs += [row[c] for c in ("phone_enc", "name_enc", "email_enc") if row[c] is not None]
        if where == "journal":
            journaled.append(row)
            continue
        insert(db, "leads", {**row, "status": "done", "outcome": "connected", "attempts": 1,
                             "updated_at": row["created_at"], "closed_at": row["created_at"]})
    insert(db, "attempts", {"id": ATTEMPT, "lead_id": ANNA_FIRST, "number": 1, "status": "done",
                            "started_at": T0, "ended_at": T0 + 60, "outcome": "connected",
                            "connected": 1})
    insert(db, "recordings", {"id": RECORDING, "lead_id": ANNA_FIRST, "attempt_id": ATTEMPT,
                              "route": "fifo", "key_id": "00" * 8, "status": "complete",
                              "started_at": T0 + 5, "ended_at": T0 + 50, "duration_s": 45.0,
                              "sample_rate": 8000})
    db.close()
    # the old intake journal: its table took the old leads' columns, phone_hash included
    journal = sqlite3.connect(store_dir / "ce.db-intake", isolation_level=None)
    journal.execute("PRAGMA journal_mode=WAL")
    journal.execute("ATTACH DATABASE ? AS store", (str(database),))
    journal.execute(f"CREATE TABLE new_leads AS SELECT {', '.join(OLD_JOURNAL_COLUMNS)}"
                    " FROM store.leads WHERE 0")
    journal.execute("CREATE UNIQUE INDEX new_leads_id ON new_leads(id)")
    for row in journaled:
        insert(journal, "new_leads", row)
    journal.close()
    # the old keystore: the recording's sealed key, in WAL mode as keystores were then
    keys = sqlite3.connect(keystore, isolation_level=None)
    keys.execute("PRAGMA journal_mode=WAL")
    keys.execute("CREATE TABLE recording_keys (recording_id TEXT PRIMARY KEY,"
                 " sealed_key BLOB NOT NULL, created_at REAL)")
    keys.execute("INSERT INTO recording_keys VALUES (?, ?, ?)", (RECORDING, os.urandom(80), T0))
    keys.close()
    return hashes, blobs


def found_in(directory: Path, needles: list[bytes]) -> list[str]:
    """Which files under directory hold which needles, byte for byte."""
    hits = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.name}: {needle[:16]!r}" for needle in needles if needle in data]
    return hits


def schema_sql(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(row[0] or "" for row in db.execute("SELECT sql FROM sqlite_master"))
    finally:
        db.close()


async def test_an_old_store_opens_rekeyed_and_keeps_no_old_trace(tmp_path):
    store_dir, keystore = tmp_path / "store", tmp_path / "keys" / "ks.db"
    keystore.parent.mkdir()
    hashes, blobs = build_old_store(store_dir, keystore)
    old_traces = hashes + blobs
    assert found_in(store_dir, old_traces)  # the search sees the old bytes

    async with Store.open(store_dir / "ce.db", DATA_KEY, keystore=keystore) as store, \
            KeyStore.open(keystore) as keys:
        services = Services(store, vault=RecordingVault(tmp_path / "recordings", keys))
        # every lead, the journaled one too, reads back whole
        for lead_id, (phone, name, email, _) in LEADS.items():
            lead = await store.get_lead(lead_id)
            assert (lead.phone_e164, lead.name, lead.email) == (phone, name, email), lead_id
            assert lead.consent == Consent(True, True, "v3")
        journaled = next(i for i, v in LEADS.items() if v[3] == "journal")
        assert (await store.get_lead(journaled)).status == "queued"
        subjects = {lead_id: subject for lead_id, subject in sqlite3.connect(
            store_dir / "ce.db").execute("SELECT id, subject_id FROM leads")}
        anna = {subjects[i] for i, v in LEADS.items() if v[0] == ANNA}
        assert len(anna) == 1 and None not in anna  # three leads of one number: one subject
        assert subjects[next(i for i, v in LEADS.items() if v[0] == BOB)] not in anna
        assert await keys.subject_count() == 2
        # the old columns are gone, in the store and in the journal
        for path in (store_dir / "ce.db", store_dir / "ce.db-intake"):
            assert "phone_hash" not in schema_sql(path), path.name
        # while the store is open, as the engine runs it: no old byte in any file of its
        # directory (the keyed hash now lives in the keystore only)
        assert found_in(store_dir, old_traces) == []
        assert found_in(keystore.parent, blobs) == []
        # the recording, its audit trail, its subject's export
        [recording] = await store.list_recordings(lead_id=ANNA_FIRST)
        assert (recording.id, recording.phone_e164) == (RECORDING, ANNA)
        check = await services.audit.verify()
        assert check.intact, check.problem
        assert check.entries[0].action == "widgets.add"
        exported = await services.subjects.export(DPO, ANNA)
        assert sorted(lead["id"] for lead in exported["leads"]) == sorted(
            i for i, v in LEADS.items() if v[0] == ANNA)
        # and erasure works on the migrated subject
        erasure = await services.subjects.erase(DPO, ANNA)
        assert (erasure.leads, erasure.recordings) == (3, 1)
        assert await store.leads_for_number(ANNA) == []
        assert (await services.subjects.export(DPO, ANNA))["leads"] == []
        bob = next(i for i, v in LEADS.items() if v[0] == BOB)
        assert (await store.get_lead(bob)).name == "Bob" != ERASED
        assert await keys.subject_count() == 1
        assert await keys.get(RECORDING) is None
    # closed: still nothing, and a second open has nothing left to migrate
    assert found_in(store_dir, old_traces) == []
    async with Store.open(store_dir / "ce.db", DATA_KEY, keystore=keystore) as store:
        assert (await store.get_lead(bob)).phone_e164 == BOB
