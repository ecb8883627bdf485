"""Erasure on a PostgreSQL store, proven as an outsider would: after the erasure, a CHECKPOINT
and VACUUM, the server's whole data directory (heap files, dead tuples, the WAL) is searched
byte for byte. The personal fields were never there in plaintext; the ciphertext of the erased
lead may still be (the WAL keeps it), and it is unreadable: its subject key is gone from the
keystore (a file outside PostgreSQL, its deleted pages zeroed and its log truncated), and no
key left opens it."""

from __future__ import annotations

import time

import asyncpg
import pytest

from callengine.access import Principal, Role
from callengine.crypto import FieldCipher
from callengine.crypto.errors import TamperedError
from callengine.model import Consent
from callengine.services.subjects import erase_subject
from callengine.storage.pg.store import PgStore
from tests.support.engine import DATA_KEY, add_widget

ANNA, BOB = "+48601234567", "+48601999888"
ADMIN = Principal("dpo", Role.ADMIN)


async def _lead(store, widget, phone: str, name: str, email: str):
    return await store.create_lead(
        widget, phone_e164=phone, phone_region="PL", phone_kind="mobile", name=name,
        email=email, consent=Consent(False, False, "v1"), now=time.time())


def _found(files, needle: bytes) -> list[str]:
    found = []
    for path in files:
        try:
            if needle in path.read_bytes():
                found.append(str(path))
        except FileNotFoundError:  # the server removed it since the listing (a temporary file)
            pass
    return found


async def test_an_erased_subject_is_unreadable_in_the_servers_files(postgres, tmp_path):
    url = await postgres.new_database()
    keystore = tmp_path / "keystore.db"
    async with PgStore.open(url, DATA_KEY, keystore=keystore,
                            audit_dir=tmp_path / "audit") as store:
        widget = await add_widget(store, duplicate_window_s=0)
        anna = await _lead(store, widget, ANNA, "Anna Kowalska", "anna@shop.example")
        await _lead(store, widget, BOB, "Bob Nowak", "bob@shop.example")
        (ciphertext,), = await store._db.execute_fetchall(
            "SELECT phone_enc FROM leads WHERE id = ?", (anna.id,))
        subject_id, wrapped = await store._keys.subject_by_hash(
            FieldCipher(DATA_KEY).number_hash(ANNA))
        await erase_subject(store, ANNA, ADMIN, time.time(), vault=None)
        assert await store.leads_for_number(ANNA) == []
        assert len(await store.leads_for_number(BOB)) == 1
        assert await store._keys.subject_keys([subject_id]) == {}
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CHECKPOINT")
        await conn.execute("VACUUM")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    server_files = postgres.files()
    assert any("pg_wal" in str(path) for path in server_files)  # the search covers the WAL
    for plaintext in (ANNA.encode(), b"601234567", b"Anna Kowalska", b"anna@shop.example",
                      b"Bob Nowak", BOB.encode()):
        assert _found(server_files, plaintext) == [], plaintext  # never stored in plaintext
    # The number's keyed hash and the subject's wrapped key: only ever in the keystore, and
    # gone from it (a hash that could link a number to its rows, a key that could open them).
    anna_hash = FieldCipher(DATA_KEY).number_hash(ANNA).encode()
    keystore_files = sorted(tmp_path.glob("keystore.db*"))
    assert _found(server_files, anna_hash) == []
    assert _found(keystore_files, anna_hash) == [] and _found(keystore_files, wrapped) == []
    bob_hash = FieldCipher(DATA_KEY).number_hash(BOB).encode()
    assert _found(keystore_files, bob_hash)  # (the search sees what is there)
    # Whatever copy of Anna's ciphertext the server still holds, no key left opens it.
    async with PgStore.open(url, DATA_KEY, keystore=keystore,
                            audit_dir=tmp_path / "audit") as store:
        assert await store._keys.subject_keys([subject_id]) == {}
        bob_subject, bob_key = await store._keys.subject_by_hash(bob_hash.decode())
        cipher = FieldCipher(DATA_KEY).subject_cipher(bob_subject, bob_key)
        with pytest.raises(TamperedError):
            cipher.decrypt(bytes(ciphertext), f"leads.phone:{anna.id}")
